"""Browser speed figures: a 10,000-request run in headless Chromium.

Run: ``python tests/bench/bench_browser.py`` (needs /usr/bin/chromium). Starts
``wsgiscope serve`` on a free loopback port and reports, for a 10,000-request scenario and,
as the peer measured in the same run, the ten-users lesson:

* time from opening a run to its first drawn frame (engine run + encoding + socket + draw),
* time from pressing play to the first frame drawn past the playhead,
* frames sent per second at 1x and at "max", and the size of a frame on the wire,
* scrubbing end to end: frame interval (median, p95), frames per second, draw cost.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wsgiscope.app import create_app  # noqa: E402
from wsgiscope.app.web.exports import encode_share  # noqa: E402

import simulator  # noqa: E402

BIG = {
    "name": "10,000 requests on gunicorn -w 4 --threads 4",
    "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 4, "threads": 4},
    "machine": {"cores": 4},
    "endpoints": {"/mixed": [{"cpu_ms": 2}, {"io_ms": {"exp": 20}}, {"cpu_ms": 3}]},
    "workload": [{"constant": {"rate_per_s": 200, "duration_s": 50}, "path": "/mixed"}],
    "seed": 3,
}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SCRUB_JS = """async (steps) => {
  const w = window.wsgiscope, end = w.store.end;
  w.stats.drawTimes = [];
  const gaps = [];
  let last = await new Promise(requestAnimationFrame);
  for (let i = 0; i <= steps; i++) {
    w.player.seek(end * i / steps, {scrubbing: true});
    const now = await new Promise(requestAnimationFrame);
    gaps.push(now - last);
    last = now;
  }
  return {gaps, draws: w.stats.drawTimes};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p95(xs: list[float]) -> float:
    return sorted(xs)[int(0.95 * (len(xs) - 1))] if xs else float("nan")


def measure(page, base: str, scenario: dict) -> dict:
    clean = simulator.load_scenario(scenario).to_dict()
    with create_app().test_request_context():
        share = encode_share(clean)
    page.goto(f"{base}/?s={share}&seed={clean['seed']}")
    page.wait_for_function("window.wsgiscope && wsgiscope.stats.firstDrawAt > 0", timeout=120_000)
    s = page.evaluate("wsgiscope.stats")
    open_ms = s["firstDrawAt"] - s["startAt"]
    n_requests = page.evaluate("wsgiscope.store.meta.n_requests")
    n_frames = page.evaluate("wsgiscope.store.meta.n_frames")
    # play at 1x for two seconds: frames per second sent at real-time speed
    page.locator("#clock").click()
    before = page.evaluate("[wsgiscope.stats.framesReceived, performance.now()]")
    page.keyboard.press("Space")
    page.wait_for_function("wsgiscope.stats.playFirstDrawAt > 0")
    play_ms = page.evaluate("wsgiscope.stats.playFirstDrawAt - wsgiscope.stats.playAt")
    time.sleep(2.0)
    after = page.evaluate("[wsgiscope.stats.framesReceived, performance.now()]")
    fps_1x = (after[0] - before[0]) / ((after[1] - before[1]) / 1000)
    # then as fast as possible, to the end
    t0 = page.evaluate("[wsgiscope.stats.framesReceived, performance.now()]")
    page.select_option("#speed", "max")
    page.wait_for_function("wsgiscope.store.complete", timeout=120_000)
    t1 = page.evaluate("[wsgiscope.stats.framesReceived, performance.now()]")
    fps_max = (t1[0] - t0[0]) / max((t1[1] - t0[1]) / 1000, 1e-6)
    s = page.evaluate("wsgiscope.stats")
    frame_bytes = s["frameBytes"] / max(s["framesReceived"], 1)
    page.keyboard.press("Space")  # pause wherever it is
    page.evaluate("wsgiscope.player.pause()")
    scrub = page.evaluate(SCRUB_JS, 600)
    gaps = scrub["gaps"][1:]
    return {
        "requests": n_requests,
        "frames": n_frames,
        "open_to_first_frame_ms": open_ms,
        "play_to_first_frame_ms": play_ms,
        "frames_per_s_sent_1x": fps_1x,
        "frames_per_s_sent_max": fps_max,
        "bytes_per_frame": frame_bytes,
        "total_mb": s["bytes"] / 1e6,
        "scrub_median_frame_ms": median(gaps),
        "scrub_p95_frame_ms": p95(gaps),
        "scrub_fps": 1000 / median(gaps),
        "scrub_median_draw_ms": median(scrub["draws"]),
        "scrub_p95_draw_ms": p95(scrub["draws"]),
    }


def main() -> int:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsgiscope.app.cli", "serve", "--port", str(port)], cwd=ROOT,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            lesson = measure(page, base, simulator.presets.get("dev-single-thread").scenario)
            big = measure(page, base, BIG)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    print(f"{'':32}{'ten users':>14}{'10k requests':>14}")
    for key in lesson:
        a, b = lesson[key], big[key]
        whole = key in ("requests", "frames")
        fmt = (lambda v: f"{int(v):14d}") if whole else (lambda v: f"{float(v):14.1f}")
        print(f"{key:32}{fmt(a)}{fmt(b)}")
    ratio = big["scrub_median_frame_ms"] / lesson["scrub_median_frame_ms"]
    print(f"scrub frame time, 10k requests against ten users: {ratio:.2f}x")
    print(f"browser console errors: {len(errors)}")
    print(json.dumps({"lesson": lesson, "big": big}, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
