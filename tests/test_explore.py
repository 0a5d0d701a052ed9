"""``genzoo explore`` (issue #23): the endpoints over HTTP, the command line, and the page in a real
browser (headless Chromium from Debian's packages, driven by playwright).

One small model is trained for the whole file (80 steps, about 25 s on one thread): its Q already
reads the categorical code c1 from G's own samples (L_I of c1 about 2.0 of ln 10 = 2.30 nats;
at 70 to 100 steps Q reads each category k as k in 95 to 100% of 64 samples drawn with c1 = k),
which is what the tests need; the samples do not look like digits yet. One ``genzoo explore``
subprocess on a free port of 127.0.0.1 serves every test.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

GENZOO = str(Path(sys.executable).parent / "genzoo")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
K = 3  # the category the tests pick
PAD = 2  # pixels between the cells of a grid PNG (genzoo_infogan.explore.GRID_PAD)


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("GENZOO_DISABLE_PLUGINS", None)
    return env


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """An 80-step infogan-mnist run on the offline digits, without the invariance terms and
    augmentation (they cost time and slow down Q's reading of c1 at this length)."""
    out = tmp_path_factory.mktemp("explore") / "run"
    cmd = [GENZOO, "run", "infogan-mnist", "--steps", "80", "--out", str(out), "--no-progress",
           "--set", "train.batch_size=32", "--set", "log.sample_every=0", "--set", "log.checkpoint_every=0",
           "--set", "log.eval_samples=200", "--set", "data.download=false",
           "--set", "info.real_balance=0", "--set", "info.real_invariance=0", "--set", "info.fake_invariance=0",
           "--set", "model.augment=none"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert (out / "model.safetensors").is_file()
    return out


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log
        self.client = httpx.Client(base_url=url, timeout=30, trust_env=False)

    def grid(self, **body) -> httpx.Response:
        return self.client.post("/api/grid", json=body)


def _start(args: list[str], log: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """Start ``genzoo explore ARGS``; wait for the line with its URL."""
    proc = subprocess.Popen([GENZOO, "explore", *args], env=_env(), stdout=subprocess.PIPE,
                            stderr=log.open("w"), text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(s) for s in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if " at http://" in line:
            return proc, line.split(" at ", 1)[1].split()[0]
    proc.kill()
    raise AssertionError(f"genzoo explore did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def server(trained_run, tmp_path_factory):
    log = tmp_path_factory.mktemp("explore-log") / "server.log"
    proc, url = _start([str(trained_run), "--port", "0", "--label", "c2=width"], log)
    srv = Server(proc, url, log)
    yield srv
    srv.client.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _png(data: bytes):
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _cells(im, nrow: int, ncol: int, size: int = 28) -> list:
    return [im.crop((PAD + c * (size + PAD), PAD + r * (size + PAD), PAD + c * (size + PAD) + size,
                     PAD + r * (size + PAD) + size)) for r in range(nrow) for c in range(ncol)]


def _png_bytes(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


# -- the HTTP endpoints ------------------------------------------------------------------------------------
def test_listens_on_loopback_and_serves_the_card(server, trained_run):
    assert server.url.startswith("http://127.0.0.1:")
    card = server.client.get("/api/model").json()
    evaluation = json.loads((trained_run / "eval.json").read_text())
    assert card["family"] == "infogan" and card["recipe"] == "infogan-mnist" and card["step"] == 80
    assert [c["name"] for c in card["codes"]] == ["c1", "c2", "c3"]
    c1, c2, c3 = card["codes"]
    assert c1["k"] == 10 and c1["span"] == [0, 9] and c1["accuracy"] == pytest.approx(evaluation["code_accuracy"])
    assert c2["label"] == "width" and c3["label"] is None          # --label c2=width
    assert c2["span"] == [-2, 2] and c2["train_range"] == [-1, 1] and c2["default"] == 0
    for c in card["codes"]:
        assert c["L_I"] == pytest.approx(evaluation["mi"][c["name"]])
        assert c["H"] == pytest.approx(evaluation["entropy"][c["name"]])
    assert card["config"]["codes"] == "c1=cat:10,c2=uniform:-1:1,c3=uniform:-1:1"
    assert card["can_read"] is True


def test_a_grid_follows_the_controls(server):
    a = server.grid(seed=0, rows=8, cols=8, codes={"c1": K, "c2": -2.0})
    assert a.status_code == 200 and a.headers["content-type"] == "image/png"
    assert a.headers["x-grid"] == "8x8"
    assert "total;dur=" in a.headers["server-timing"]
    im = _png(a.content)
    assert im.size == (8 * 30 + 2, 8 * 30 + 2) and im.mode == "L"
    assert server.grid(seed=0, rows=8, cols=8, codes={"c1": K, "c2": -2.0}).content == a.content  # deterministic
    b = server.grid(seed=0, rows=8, cols=8, codes={"c1": K, "c2": 2.0})
    c = server.grid(seed=1, rows=8, cols=8, codes={"c1": K, "c2": -2.0})
    assert b.content != a.content and c.content != a.content
    rows = server.grid(seed=0, cols=5, codes={"c1": "rows"})          # figure 2a: one row per category
    assert rows.headers["x-grid"] == "10x5" and _png(rows.content).size == (5 * 30 + 2, 10 * 30 + 2)
    sweep = server.grid(seed=0, rows=3, cols=7, codes={"c2": "sweep"})  # figure 2c: columns sweep c2
    assert sweep.headers["x-grid"] == "3x7"
    # along a row the noise is the same and c2 goes from -2 to 2: its ends differ
    cells = _cells(_png(sweep.content), 3, 7)
    assert cells[0].tobytes() != cells[6].tobytes()


def test_q_reads_the_picked_category_in_the_shown_samples(server):
    read = server.client.post("/api/grid/read", json={"seed": 0, "rows": 8, "cols": 8, "codes": {"c1": K}}).json()
    assert read["n"] == 64 and read["codes"]["c1"]["set"] == K
    assert read["codes"]["c1"]["agree"] >= 0.8, read["codes"]["c1"]["cells"]
    assert read["codes"]["c1"]["counts"][K] == round(read["codes"]["c1"]["agree"] * 64)
    rows = server.client.post("/api/grid/read", json={"seed": 0, "cols": 6, "codes": {"c1": "rows"}}).json()
    assert rows["codes"]["c1"]["agree"] >= 0.8
    # each row of the "rows" layout is its own category: row r is read as r
    per_row = [rows["codes"]["c1"]["cells"][r * 6:(r + 1) * 6] for r in range(10)]
    assert sum(cell == r for r, row in enumerate(per_row) for cell in row) >= 0.8 * 60


def test_reading_an_uploaded_image(server):
    grid = _png(server.grid(seed=2, rows=2, cols=4, codes={"c1": K}).content)
    cells = _cells(grid, 2, 4)
    tops = []
    for cell in cells:
        r = server.client.post("/api/read", files={"image": ("cell.png", _png_bytes(cell), "image/png")})
        assert r.status_code == 200, r.text
        q = r.json()
        probs = q["codes"]["c1"]["probs"]
        assert len(probs) == 10 and sum(probs) == pytest.approx(1, abs=1e-4)
        assert set(q["codes"]["c2"]) == {"kind", "mean", "std"} and q["steps"] == ["used as is"]
        tops.append(q["codes"]["c1"]["top"])
    assert tops.count(K) >= 6, tops
    cell = cells[tops.index(K)]
    # the raw body works too; so does a negative, inverted back (invert=yes), to the same reading
    from PIL import ImageOps

    raw = server.client.post("/api/read", content=_png_bytes(cell), headers={"content-type": "image/png"}).json()
    assert raw["codes"]["c1"]["top"] == K and raw["inverted"] is False
    inv = server.client.post("/api/read", data={"invert": "yes"},
                             files={"image": ("inv.png", _png_bytes(ImageOps.invert(cell)), "image/png")}).json()
    assert inv["inverted"] is True and inv["codes"]["c1"]["top"] == K
    assert inv["codes"]["c1"]["probs"] == pytest.approx(raw["codes"]["c1"]["probs"], abs=1e-5)
    big = server.client.post(
        "/api/read", files={"image": ("big.jpg", _jpeg_bytes(cell.resize((112, 96))), "image/jpeg")}).json()
    assert big["format"] == "JPEG" and big["size"] == [112, 96] and "to 28x28" in big["steps"][-1]
    assert big["seen"].startswith("data:image/png;base64,")
    assert _png(base64.b64decode(big["seen"].split(",", 1)[1])).size == (28, 28)


def _jpeg_bytes(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG")
    return buf.getvalue()


def test_an_image_from_elsewhere_is_prepared_like_mnist():
    """A dark stroke on a light, larger canvas, off centre, for a model whose samples have a dark
    ground (MNIST): inverted, its box scaled to 20 of 28 pixels, centred on its mass."""
    import numpy as np
    from PIL import Image, ImageDraw

    from genzoo_infogan.explore import prepare_image

    im = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(im).rectangle([20, 30, 80, 170], fill="black")  # 61 x 141, in the top-left part
    x, how = prepare_image(im, (1, 28, 28), "auto", ground=0.02)
    assert how["inverted"] is True and how["steps"][-1].startswith("fitted to 28x28 like MNIST")
    a = x[0, 0].numpy()
    ys, xs = np.nonzero(a > 0.5)
    assert 19 <= ys.max() - ys.min() + 1 <= 21 and 7 <= xs.max() - xs.min() + 1 <= 10
    cy, cx = (a.sum(1) * np.arange(28)).sum() / a.sum(), (a.sum(0) * np.arange(28)).sum() / a.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1
    # the same for a model with a light ground is not inverted; one with no clear ground neither
    assert prepare_image(im, (1, 28, 28), "auto", ground=0.9)[1]["inverted"] is False
    assert prepare_image(im, (1, 28, 28), "auto", ground=0.5)[1]["steps"] == ["centre-cropped and resized to 28x28"]
    # black strokes on a transparent ground: laid on white, then inverted
    rgba = Image.new("RGBA", (56, 56), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([10, 10, 45, 45], fill=(0, 0, 0, 255), width=5)
    x, how = prepare_image(rgba, (1, 28, 28), "auto", ground=0.02)
    assert how["steps"][:2] == ["transparency laid on white", how["steps"][1]] and how["inverted"] is True
    assert float(x[0, 0, 0, 0]) == 0.0 and float(x.max()) > 0.9
    # colour models: centre crop and resize
    x, how = prepare_image(Image.new("RGB", (64, 48), (255, 0, 0)), (3, 32, 32))
    assert x.shape == (1, 3, 32, 32) and how["steps"] == ["centre-cropped and resized to 32x32"]
    assert x[0, 0].min() > 0.99 and x[0, 1].max() < 0.01


def test_the_card_names_codes_by_the_factor_they_follow(trained_run):
    """Where the last evaluation found which factor each code follows (data with known factors),
    the card labels the code with it, so the slider reads "c2 width"; --label overrides."""
    import genzoo_infogan
    from genzoo_infogan.explore import Explorer

    model = genzoo_infogan.load(trained_run / "model.safetensors")
    model.checkpoint["metrics"] = dict(
        model.checkpoint["metrics"], disentanglement={"mig": 0.25, "factorvae": 0.5, "per_factor": {"x": 1}},
        code_factors={"c2": {"factor": "width", "nmi": 0.41, "per_factor": {"width": 0.41, "slant": 0.1}},
                      "c3": {"factor": "slant", "nmi": 0.3}})
    card = Explorer(model, labels={"c3": "tilt"}).card
    c1, c2, c3 = card["codes"]
    assert (c1["label"], c2["label"], c2["factor"], c2["factor_nmi"]) == (None, "width", "width", 0.41)
    assert (c3["label"], c3["factor"]) == ("tilt", "slant")
    assert card["evaluation"]["disentanglement"] == {"mig": 0.25, "factorvae": 0.5}
    # metadata that is not what it should be leaves blanks, not an error
    model.checkpoint["metrics"] = {"mi": [1, 2], "codes": "x", "code_factors": 3, "entropy": {"c1": float("nan")}}
    card = Explorer(model).card
    assert [(c["L_I"], c["H"], c["label"]) for c in card["codes"]] == [(None, None, None)] * 3
    json.dumps(card, allow_nan=False)


def test_an_angle_code_gets_a_slider_over_its_arc():
    from genzoo_infogan.codes import Angle
    from genzoo_infogan.explore import code_span, default_value, train_range

    half, turn = Angle(180, "fixed"), Angle()
    assert (code_span(half), train_range(half), default_value(half)) == ((-90.0, 90.0), (-90.0, 90.0), 0.0)
    assert (code_span(turn), train_range(turn)) == ((-180.0, 180.0), (-180.0, 180.0))


@pytest.mark.parametrize("body, status, message", [
    ({"codes": {"c9": 1}}, 400, "no code named 'c9'. Did you mean 'c3' or 'c2' or 'c1'? Codes: c1, c2, c3"),
    ({"codes": {"c2": 5}}, 400, "c2=5 is out of range: it must be from -2 to 2"),
    ({"codes": {"c1": 10}}, 400, "c1=10 is out of range: categories are 0 to 9"),
    ({"codes": {"c1": 1.5}}, 400,
     'c1 is cat:10: its value must be a category from 0 to 9, "random" or "rows", got 1.5'),
    ({"codes": {"c2": "rows"}}, 400, ('c2="rows" needs a categorical code; c2 is uniform:-1.0:1.0 '
                                      '(use "sweep" to sweep it across the columns)')),
    ({"codes": {"c1": "rows", "c2": "sweep"}}, 400, 'only one code can be "rows" or "sweep"; c1 already is'),
    ({"rows": 10000, "cols": 10000}, 400, "rows=10000 is out of range: it must be from 1 to 16"),
    ({"seed": -1}, 400, "seed=-1 is out of range: it must be from 0 to 4294967295"),
    ({"seed": "abc"}, 400, 'seed must be an integer from 0 to 4294967295, got "abc"'),
    ({"sed": 1}, 400, "unknown field 'sed'. Did you mean 'seed'? Fields: seed, rows, cols, codes"),
    ([1, 2], 400, 'the body must be a JSON object, e.g. {"seed": 0, "rows": 8, "cols": 8, "codes": {"c1": 3}}'),
])
def test_bad_grid_requests_get_a_4xx_with_a_clear_message(server, body, status, message):
    for path in ("/api/grid", "/api/grid/read"):
        r = server.client.post(path, json=body)
        assert r.status_code == status and r.headers["content-type"] == "application/json"
        assert r.json() == {"error": message}


def test_other_bad_requests_get_a_4xx_json(server):
    def err(r, status):
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/json"
        return r.json()["error"]

    c = server.client
    assert err(c.post("/api/grid", content=b"{not json", headers={"content-type": "application/json"}), 400) \
        .startswith("the body is not valid JSON: ")
    assert err(c.post("/api/grid", content=b"seed=1", headers={"content-type": "text/plain"}), 415) == \
        "send the request as JSON (Content-Type: application/json), got 'text/plain'"
    assert err(c.post("/api/grid", content=b" " * 70_000, headers={"content-type": "application/json"}), 413) == \
        "the body is 70,000 bytes; at most 65,536"
    chunked = iter([b" " * 40_000, b" " * 40_000])  # no Content-Length: counted as it comes
    assert err(c.post("/api/grid", content=chunked, headers={"content-type": "application/json"}), 413) == \
        "the body is over 65,536 bytes; at most 65,536"
    assert err(c.post("/api/read", files={"image": ("notes.txt", b"not an image at all", "text/plain")}), 415) == \
        "the file is not an image this explorer can read; send a PNG, JPEG, GIF, BMP or WebP image"
    assert err(c.post("/api/read", files={"picture": ("a.png", b"x", "image/png")}), 400) == \
        "no file in the form: send the image in the field 'image'"
    assert err(c.post("/api/read", content=b"", headers={"content-type": "image/png"}), 400) == \
        "the file is empty; send a PNG, JPEG, GIF, BMP or WebP image"
    assert err(c.post("/api/read", content=b"x" * (11 * 2**20), headers={"content-type": "image/png"}), 413) == \
        "the body is 11,534,336 bytes; at most 10,485,760"
    truncated = _png_bytes(_png(server.grid(rows=2, cols=2).content))[:200]
    assert "cannot be decoded (truncated or corrupt?)" in err(
        c.post("/api/read", content=truncated, headers={"content-type": "image/png"}), 415)
    assert err(c.post("/api/read?invert=maybe", content=_png_bytes(_png(server.grid(rows=1, cols=1).content)),
                      headers={"content-type": "image/png"}), 400) == "invert must be auto, yes or no, got 'maybe'"
    assert err(c.get("/api/nothing"), 404).startswith("no such page: /api/nothing")
    assert err(c.get("/api/grid"), 405) == "GET is not allowed on /api/grid"
    assert "is not served here" in err(c.get("/api/model", headers={"host": "attacker.example"}), 400)
    assert server.proc.poll() is None  # still serving
    headers = c.get("/").headers
    assert "default-src 'none'" in headers["content-security-policy"]


# -- the command line --------------------------------------------------------------------------------------
def _explore_cli(*args):
    """``genzoo explore ARGS`` in this process (its errors come before it would serve)."""
    from click.testing import CliRunner

    from genzoo_infogan.cli import cli

    res = CliRunner().invoke(cli, ["explore", *args])
    return res.exit_code, " ".join(res.stderr.split())


def test_without_the_web_stack_one_message_and_exit_2(trained_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette now raises ImportError
    code, err = _explore_cli(str(trained_run))
    assert code == 2
    assert err == ("error: genzoo explore needs starlette, which is not installed: install with "
                   "pip install 'genzoo-infogan[explore]'")


def test_command_line_errors(trained_run, tmp_path):
    code, err = _explore_cli(str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code, err = _explore_cli(str(trained_run), "--port", str(port))
        assert code == 2
        assert err == (f"error: port {port} on 127.0.0.1 is in use; choose another with --port "
                       "(--port 0 picks a free one)")
    code, err = _explore_cli(str(trained_run), "--port", "0", "--label", "c9=size")
    assert code == 2 and err.startswith("error: --label 'c9=size': no code named 'c9'.")
    code, err = _explore_cli(str(trained_run), "--port", "0", "--device", "cuda:7")
    assert code == 2 and err.startswith("error: --device 'cuda:7': ")
    code, err = _explore_cli(str(trained_run), "--host", "192.0.2.1")  # TEST-NET-1: no machine's own address
    assert code == 2 and err == "error: --host '192.0.2.1' is not an address of this machine"


# -- the page, in a real browser ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium (or the binary GENZOO_CHROMIUM names); without it the test skips, or
    fails where GENZOO_REQUIRE_BROWSER=1 (CI: .ci/run installs it and sets that)."""
    wanted = os.environ.get("GENZOO_CHROMIUM")
    if wanted:
        path = wanted if os.path.isfile(wanted) else None
    else:
        path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.isfile("/usr/bin/chromium") else None)
    problem = None
    if path is None:
        problem = (f"Chromium is not installed ({wanted or 'chromium'} not found): the browser test needs it "
                   "(Debian/Ubuntu: apt-get install chromium; never `playwright install`)")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed: pip install 'genzoo-infogan[test]'"
    if problem:
        if os.environ.get("GENZOO_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GENZOO_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return path


def _wait_version(page, above: int) -> int:
    page.wait_for_function("(v) => Number(document.querySelector('#grid').dataset.version) > v", arg=above,
                           timeout=20_000)
    return int(page.get_attribute("#grid", "data-version"))


def _wait_reading(page, version: int) -> None:
    """Until Q's reading under the grid is that of grid ``version``."""
    page.wait_for_function("(v) => document.querySelector('#grid-reading').dataset.version === String(v)",
                           arg=version, timeout=20_000)


def test_the_page_in_a_browser(chromium, server, tmp_path):  # chromium first: skip before training
    from playwright.sync_api import sync_playwright

    origin = server.url.rstrip("/")
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960}, accept_downloads=True)
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(server.url)
            v = _wait_version(page, 0)
            assert page.text_content("#model-title").startswith("infogan-mnist")
            assert page.text_content('.code[data-code="c2"] .code-label') == "width"
            # one slider per continuous code, -2 to 2 with the training range marked; one picker per categorical
            assert page.locator("input[type=range]").count() == 2 and page.locator(".picker").count() == 1
            slider = page.locator('input[type=range][data-code="c2"]')
            assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("-2", "2")
            assert page.locator('.code[data-code="c2"] .band').get_attribute("title") == "training range -1.00 to 1.00"
            assert page.locator('.picker[data-code="c1"] button').count() == 12  # random, 0..9, all as rows

            # pick category K: the grid redraws, and Q reads the shown samples as K
            page.click(f'.picker[data-code="c1"] button[data-value="{K}"]')
            v = _wait_version(page, v)
            _wait_reading(page, v)
            line = page.locator('#grid-reading .line[data-code="c1"]')
            assert f"Q reads {K} in" in line.text_content()
            assert float(line.get_attribute("data-agree")) >= 0.8

            # the PNG the download button gives is the grid on screen: Q reads its cells as K
            with page.expect_download() as dl:
                page.click("#download")
            grid_file = tmp_path / "grid.png"
            dl.value.save_as(grid_file)
            cells = _cells(_png(grid_file.read_bytes()), 8, 8)
            tops = [server.client.post("/api/read", files={"image": ("c.png", _png_bytes(c), "image/png")})
                    .json()["codes"]["c1"]["top"] for c in cells[:8]]
            assert tops.count(K) >= 6, tops

            # move the c2 slider to its end with the keyboard: the picture changes
            before = page.locator("#grid").screenshot()
            page.focus('input[type=range][data-code="c2"]')
            page.keyboard.press("End")
            v = _wait_version(page, v)
            assert json.loads(page.get_attribute("#grid", "data-request"))["codes"]["c2"] == 2
            assert page.text_content('.value[data-code="c2"]') == "2.00"
            after = page.locator("#grid").screenshot()
            assert after != before

            # new noise: another seed, another picture
            page.click("#new-noise")
            v = _wait_version(page, v)
            assert page.input_value("#seed") != "0"
            assert page.locator("#grid").screenshot() != after

            # drop an image (a cell Q read as K): the reading appears, with K on top
            cell = cells[tops.index(K)]
            b64 = base64.b64encode(_png_bytes(cell.resize((84, 84)))).decode()
            page.evaluate("""(b64) => {
                const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
                const drop = new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true });
                document.querySelector("#drop").dispatchEvent(drop);
            }""", b64)
            page.wait_for_selector('#reading .bars[data-code="c1"]', timeout=20_000)
            assert page.get_attribute('#reading .bars[data-code="c1"]', "data-top") == str(K)
            assert page.locator('#reading .bars[data-code="c1"] .bar').count() == 10
            assert page.get_attribute("#reading", "data-file") == "dropped.png"
            assert page.locator('#reading .cont[data-code="c2"]').count() == 1

            # pick a file that is not an image: the server's message shows
            notes = tmp_path / "notes.txt"
            notes.write_text("not an image")
            page.set_input_files("#file", str(notes))
            page.wait_for_selector("#reading .error")
            assert page.text_content("#reading .error") == (
                "the file is not an image this explorer can read; send a PNG, JPEG, GIF, BMP or WebP image")

            # the picture for the README: all categories as rows, an image read
            page.click('.picker[data-code="c1"] button[data-value="rows"]')
            v = _wait_version(page, v)
            assert json.loads(page.get_attribute("#grid", "data-request"))["codes"]["c1"] == "rows"
            assert page.locator("#rows").is_disabled()  # the categories make the rows
            page.set_input_files("#file", files=[{"name": "digit.png", "mimeType": "image/png",
                                                  "buffer": _png_bytes(cell.resize((84, 84)))}])
            page.wait_for_selector('#reading .bars[data-code="c1"]')
            _wait_reading(page, v)
            shot = Path(os.environ.get("GENZOO_EXPLORE_SCREENSHOT") or tmp_path / "explore.png")
            page.screenshot(path=str(shot), full_page=True)
            assert _png(shot.read_bytes()).size[0] == 1440
        finally:
            browser.close()
    expected = "Failed to load resource: the server responded with a status of 415 (Unsupported Media Type)"
    assert [e for e in errors if e != expected] == [], errors  # the 415 is the text file's
    outside = [u for u in requests if not (u.startswith((origin, "data:", "blob:")))]
    assert not outside, f"the page loaded assets from elsewhere: {outside}"
