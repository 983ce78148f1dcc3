"""Browser speed figures: runs of 10,000 to 200,000 requests in headless Chromium.

Run: ``python tests/bench/bench_browser.py [--requests 10000,50000,200000] [--repeat 3]``
(needs /usr/bin/chromium). Serves the page on a free loopback port as ``wsgiscope serve``
does (gunicorn, a gevent worker, the simulation pool; the page's caps raised so that every
size can be opened) and reports, for gunicorn gthread -w 4 --threads 4 under a constant 200
requests/s of a mixed CPU/I/O endpoint, sized to each number of requests (above 100,000:
gunicorn sync -w 8 with 1 s of I/O under Poisson arrivals, which fits the engine's event
budget), and, as the peer measured in the same run, the ten-users lesson:

* time from opening a run to its first drawn frame (engine run + encoding + socket + draw),
* time from pressing play to the first frame drawn past the playhead,
* frames sent per second at 1x and at "max", and the size of a frame on the wire,
* scrubbing the whole run (the playhead moves, the data layer stays): frame interval and
  draw cost,
* a full redraw (every frame draws the timeline's data layer and the heat map again), of
  the whole run and while zooming in step by step, panning and zooming out: frame
  interval and draw cost,
* the metrics at the playhead alone (a ``Metrics`` of the page's store drawn at 200
  playheads across the run).

Each interactive figure is measured ``--repeat`` times on the same loaded run and the
median of the repeats' medians is printed, with the load average before and after: the
machine may be shared, so compare figures measured in the same conditions. A size the page
refuses is reported with the page's one-line reason.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wsgiscope import simulator  # noqa: E402
from wsgiscope.app import create_app  # noqa: E402
from wsgiscope.app.web.exports import encode_share  # noqa: E402

RATE_PER_S = 200


def big(n: int) -> dict[str, Any]:
    if n > 100_000:  # the gthread run below needs more than the engine's 4 M events here
        return {
            "name": f"{n:,} requests on gunicorn sync -w 8, 1 s of I/O, Poisson 7/s",
            "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 8, "timeout_s": 0},
            "machine": {"cores": 8},
            "endpoints": {"/io": [{"io_ms": {"exp": 1000}}]},
            "workload": [{"poisson": {"rate_per_s": 7, "duration_s": n / 7}, "path": "/io"}],
            "client": {"timeout_s": 3600},
            "seed": 3,
        }
    return {
        "name": f"{n:,} requests on gunicorn -w 4 --threads 4",
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 4, "threads": 4},
        "machine": {"cores": 4},
        "endpoints": {"/mixed": [{"cpu_ms": 2}, {"io_ms": {"exp": 20}}, {"cpu_ms": 3}]},
        "workload": [{"constant": {"rate_per_s": RATE_PER_S, "duration_s": n / RATE_PER_S},
                      "path": "/mixed"}],
        "seed": 3,
    }


# The page as ``wsgiscope serve`` serves it (gunicorn, a gevent worker, the simulation pool),
# with room for every size asked for: the bench measures the canvas, not the server's caps.
SERVED = ('wsgiscope.app.server:served_app({"MAX_REQUESTS": 200000, "SIM_TIMEOUT_S": 900, '
          '"SIM_MAX_EVENTS": 4000000, "SIM_MEMORY_MB": 4096, "RUN_CACHE_BYTES": 1500000000})')


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

# What a wheel or a drag does (main.js): change the scale, ask for a frame. The playhead sits
# at 60 % of the run, so the metrics and the dimming are those of a run being looked at.
# First the whole run, drawn again every frame (as a resize or a wheel at the fitted view
# does), then zooming in step by step to a few % of the run, panning there, zooming out.
REDRAW_JS = """async (steps) => {
  const w = window.wsgiscope, sc = w.scale, end = w.store.end;
  const frame = () => new Promise(requestAnimationFrame);
  w.player.seek(end * 0.6);
  sc.fit();
  await frame();
  const out = {};
  for (const phase of ["whole", "zoom"]) {
    w.stats.drawTimes = [];
    const gaps = [], third = Math.floor(steps / 3);
    let last = await frame();
    for (let i = 0; i < steps; i++) {
      if (phase === "whole") sc.version++;
      else if (i < third) sc.zoom(0.9, end * 0.5);
      else if (i < 2 * third) sc.pan((sc.t1 - sc.t0) * 0.05 * (i % 2 ? 1 : -1.5));
      else sc.zoom(1 / 0.9, (sc.t0 + sc.t1) / 2);
      w.player.seek(w.player.t);
      const now = await frame();
      gaps.push(now - last);
      last = now;
    }
    out[phase] = {gaps: gaps.slice(1), draws: w.stats.drawTimes};
  }
  sc.fit();
  w.player.seek(w.player.t);
  return out;
}"""

METRICS_JS = """async (count) => {
  const w = window.wsgiscope, end = w.store.end, times = [];
  const { Metrics } = await import("/static/js/metrics.js");
  const table = document.createElement("table");
  table.createTBody();
  const canvas = document.createElement("canvas");
  canvas.width = 300; canvas.height = 120;
  const dl = document.createElement("dl");
  const m = new Metrics(w.store, { dl, histogram: canvas, slowest: table });
  for (let i = 1; i <= count; i++) {
    const t = end * i / count, k = w.store.frameAt(t), a = performance.now();
    m.draw(t, k);
    times.push(performance.now() - a);
  }
  return times;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p95(xs: list[float]) -> float:
    return sorted(xs)[int(0.95 * (len(xs) - 1))] if xs else float("nan")


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def interactive(page: Any, repeat: int) -> dict[str, float]:
    """Scrub, full redraw and metrics, each ``repeat`` times: the median of the medians."""
    runs: dict[str, list[float]] = {}
    for _ in range(repeat):
        scrub = page.evaluate(SCRUB_JS, 300)
        redraw = page.evaluate(REDRAW_JS, 90)
        metrics = page.evaluate(METRICS_JS, 200)
        got = {
            "scrub_median_frame_ms": median(scrub["gaps"][1:]),
            "scrub_p95_frame_ms": p95(scrub["gaps"][1:]),
            "scrub_median_draw_ms": median(scrub["draws"]),
            "metrics_median_ms": median(metrics),
        }
        for phase in ("whole", "zoom"):
            r = redraw[phase]
            got[f"redraw_{phase}_median_frame_ms"] = median(r["gaps"])
            got[f"redraw_{phase}_p95_frame_ms"] = p95(r["gaps"])
            got[f"redraw_{phase}_median_draw_ms"] = median(r["draws"])
            got[f"redraw_{phase}_p95_draw_ms"] = p95(r["draws"])
        for key, value in got.items():
            runs.setdefault(key, []).append(value)
    out = {key: median(values) for key, values in runs.items()}
    out["scrub_fps"] = 1000 / out["scrub_median_frame_ms"]
    for phase in ("whole", "zoom"):
        out[f"redraw_{phase}_fps"] = 1000 / out[f"redraw_{phase}_median_frame_ms"]
        # each pass's own figure, to show the spread
        out[f"redraw_{phase}_fps_runs"] = [  # type: ignore[assignment]
            round(1000 / v, 1) for v in runs[f"redraw_{phase}_median_frame_ms"]]
    return out


def measure(page: Any, base: str, scenario: dict[str, Any], repeat: int) -> dict[str, Any]:
    clean = simulator.load_scenario(scenario).to_dict()
    with create_app().test_request_context():
        share = encode_share(clean)
    resp = page.goto(f"{base}/?s={share}&seed={clean['seed']}")
    if resp is not None and resp.status != 200:
        why = page.locator(".form-error, [role=alert]").first
        text = why.inner_text() if why.count() else f"HTTP {resp.status}"
        return {"refused": text.strip()}
    page.wait_for_function("window.wsgiscope && (wsgiscope.stats.firstDrawAt > 0 || "
                           "wsgiscope.stats.errors.length)", timeout=900_000)
    s = page.evaluate("wsgiscope.stats")
    if s["errors"]:
        return {"refused": json.dumps(s["errors"][0])}
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
    page.wait_for_function("wsgiscope.store.complete", timeout=900_000)
    t1 = page.evaluate("[wsgiscope.stats.framesReceived, performance.now()]")
    fps_max = (t1[0] - t0[0]) / max((t1[1] - t0[1]) / 1000, 1e-6)
    s = page.evaluate("wsgiscope.stats")
    frame_bytes = s["frameBytes"] / max(s["framesReceived"], 1)
    page.wait_for_function("!wsgiscope.player.playing", timeout=900_000)
    page.evaluate("wsgiscope.player.pause()")
    return {
        "requests": n_requests,
        "frames": n_frames,
        "open_to_first_frame_ms": open_ms,
        "play_to_first_frame_ms": play_ms,
        "frames_per_s_sent_1x": fps_1x,
        "frames_per_s_sent_max": fps_max,
        "bytes_per_frame": frame_bytes,
        "total_mb": s["bytes"] / 1e6,
        **interactive(page, repeat),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", default="10000,50000",
                        help="run sizes, comma-separated (default 10000,50000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="passes of the scrub, redraw and metrics figures (default 3)")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(v) for v in args.requests.split(",") if v.strip()]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gevent", "--worker-connections", "100",
         "--no-control-socket", "--timeout", "120", "-b", f"127.0.0.1:{port}", SERVED], cwd=ROOT,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    load_before = load()
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
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(120_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            results["ten users"] = measure(
                page, base, simulator.presets.get("dev-single-thread").scenario, args.repeat)
            for n in sizes:
                print(f"measuring {n:,} requests (load {load()})", file=sys.stderr, flush=True)
                results[f"{n // 1000}k requests"] = measure(page, base, big(n), args.repeat)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    names = list(results)
    print(f"{'':32}" + "".join(f"{name:>16}" for name in names))
    keys: list[str] = []
    for r in results.values():
        keys += [k for k in r if k not in keys]
    for key in keys:
        cells = []
        for name in names:
            v = results[name].get(key)
            if key == "refused":
                cells.append(f"{'refused' if v else '':>16}")
            elif v is None:
                cells.append(f"{'':>16}")
            elif isinstance(v, list):
                cells.append(f"{'/'.join(f'{x:g}' for x in v):>16}")
            elif key in ("requests", "frames"):
                cells.append(f"{int(v):16d}")
            else:
                cells.append(f"{float(v):16.1f}")
        print(f"{key:32}" + "".join(cells))
    for name in names:
        if results[name].get("refused"):
            print(f"{name} refused: {results[name]['refused']}")
    lesson = results["ten users"]
    for name in names[1:]:
        r = results[name]
        if "redraw_whole_median_frame_ms" in r:
            ratio = r["redraw_whole_median_frame_ms"] / lesson["redraw_whole_median_frame_ms"]
            print(f"{name}: full redraw {r['redraw_whole_fps']:.1f} fps (whole run), "
                  f"{r['redraw_zoom_fps']:.1f} fps (zoom and pan), scrub {r['scrub_fps']:.1f} "
                  f"fps, metrics {r['metrics_median_ms']:.1f} ms; whole-run redraw frame time "
                  f"against ten users: {ratio:.2f}x")
    print(f"load average before: {load_before}, after: {load()}")
    print(f"browser console errors: {len(errors)}")
    print(json.dumps(results, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
