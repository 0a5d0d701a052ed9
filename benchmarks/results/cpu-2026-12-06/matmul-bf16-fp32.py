"""bf16 against fp32 GMAC/s of the MNIST trunk's 6272 x 1024 layer at batch 128, two threads."""
import json, time, torch
torch.manual_seed(0)
out = {"threads": torch.get_num_threads()}
for dt in (torch.float32, torch.bfloat16):
    a = torch.randn(128, 6272, dtype=dt); w = torch.randn(6272, 1024, dtype=dt)
    for _ in range(5): a @ w
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(20): a @ w
        ts.append((time.perf_counter() - t0) / 20)
    ts.sort()
    out[str(dt).split(".")[1]] = round(128 * 6272 * 1024 / ts[3] / 1e9, 1)
print(json.dumps(out))
