"""The MNIST nets' two large convolutions, bf16 on the CPU: oneDNN (F.conv2d / conv_transpose2d) against unfold + matmul."""
import time, torch, torch.nn.functional as F, statistics as st
torch.manual_seed(0)
B = int(__import__("sys").argv[1]) if len(__import__("sys").argv) > 1 else 128

def conv_mm(x, w, b):  # conv2d k4 s2 p1 as unfold + matmul
    n, c, h, _ = x.shape; o = w.shape[0]; ho = h // 2
    cols = F.unfold(x, 4, padding=1, stride=2)            # (n, c*16, ho*ho)
    y = torch.matmul(w.reshape(o, -1), cols) + b[:, None]  # (n, o, L)
    return y.reshape(n, o, ho, ho)

def convT_mm(x, w, b):  # conv_transpose2d k4 s2 p1 as matmul + fold
    n, c, h, _ = x.shape; o = w.shape[1]
    cols = torch.matmul(w.reshape(c, -1).t(), x.reshape(n, c, h * h))  # (n, o*16, h*h)
    return F.fold(cols, (2 * h, 2 * h), 4, padding=1, stride=2) + b[None, :, None, None]

def bench(fn, x, w, b, reps=20):
    ts = []
    for r in range(reps + 3):
        xx = x.detach().requires_grad_(True); ww = w.detach().requires_grad_(True); bb = b.detach().requires_grad_(True)
        t = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16):
            y = fn(xx, ww.to(torch.bfloat16), bb.to(torch.bfloat16))
        y.float().sum().backward()
        ts.append(time.perf_counter() - t)
    return st.median(ts[3:]) * 1e3, xx.grad, ww.grad

for name, shape_x, shape_w, ref, mine in [
        ("trunk conv 64->128 14->7", (B, 64, 14, 14), (128, 64, 4, 4), lambda x, w, b: F.conv2d(x, w, b, 2, 1), conv_mm),
        ("G convT 128->64 7->14", (B, 128, 7, 7), (128, 64, 4, 4), lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1), convT_mm)]:
    x = torch.randn(shape_x); w = torch.randn(shape_w) * 0.05; b = torch.randn(shape_w[1] if "T" in name else shape_w[0]) * 0.1
    for rnd in range(3):
        t_ref, gx_r, gw_r = bench(ref, x, w, b); t_mm, gx_m, gw_m = bench(mine, x, w, b)
        print(f"{name} B={B} round {rnd}: oneDNN {t_ref:.2f} ms, unfold+mm {t_mm:.2f} ms, ratio {t_ref/t_mm:.2f}; "
              f"grad rel err x {((gx_r-gx_m).norm()/gx_r.norm()).item():.1e} w {((gw_r-gw_m).norm()/gw_r.norm()).item():.1e}")
