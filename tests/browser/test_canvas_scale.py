"""Runs of thousands of requests on the canvas: what the timeline draws when request spans
are narrower than a pixel (every pixel column that holds a span is coloured, a lone request
included), and the figures at the playhead and the heat map's percentiles, which come from
prefix structures, equal what sorting the records gives."""

from __future__ import annotations

import math
import re

import pytest
from pagekit import ARTIFACTS, ready, settle

pytestmark = pytest.mark.browser

# ~3,000 requests in the first 30 s, then one request alone at 50 s: at the whole run's
# view every span is narrower than a pixel, and the lone request has its column to itself.
CROWD_AND_ONE = {
    "name": "a crowd, then one request alone",
    "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 4},
    "machine": {"cores": 2},
    "endpoints": {"/mixed": [{"cpu_ms": 1}, {"io_ms": {"exp": 10}}], "/quick": [{"cpu_ms": 1}]},
    "workload": [{"constant": {"rate_per_s": 100, "duration_s": 30}, "path": "/mixed"},
                 {"at_ms": 50_000, "count": 1, "path": "/quick"}],
}

# Varied latencies and some failures (a sync worker killed at its timeout).
MIXED = {
    "name": "figures at the playhead",
    "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 3, "timeout_s": 2},
    "machine": {"cores": 2},
    "endpoints": {"/io": [{"io_ms": {"exp": 80}}], "/cpu": [{"cpu_ms": 5}],
                  "/hang": [{"io_ms": 3000}]},
    "workload": [{"poisson": {"rate_per_s": 30, "duration_s": 60},
                  "paths": {"/io": 0.8, "/cpu": 0.19, "/hang": 0.01}}],
}


def open_whole_run(page, live_server, scenario, seed=5):
    """Start a run and wait until the page holds all of it, the playhead at its end."""
    page.goto(live_server)
    ready(page)
    page.evaluate("([s, seed]) => wsgiscope.player.start(s, seed, false)", [scenario, seed])
    page.wait_for_function(f"wsgiscope.store.meta && wsgiscope.store.meta.name === "
                           f"{scenario['name']!r} && wsgiscope.store.n > 0", timeout=60_000)
    page.wait_for_function("""() => {
        const s = wsgiscope.store;
        if (!s.meta.partial && !s.complete) wsgiscope.player.seek(s.end);
        return s.complete && !s.meta.partial && s.done.length === s.meta.n_requests;
    }""", timeout=60_000, polling=500)
    page.evaluate("wsgiscope.player.seek(wsgiscope.store.end)")
    settle(page)


# The request lane of the data layer: for each device pixel column, the colours in it.
LANE_PIXELS = """() => {
    const tl = wsgiscope.timeline, sc = wsgiscope.scale, dpr = tl.dpr;
    const lane = tl.lanes.find((l) => l.kind === "requests");
    const X0 = Math.round(sc.left * dpr), W = Math.round((sc.left + sc.width) * dpr) - X0;
    const Y0 = Math.floor(lane.y * dpr), H = Math.ceil((lane.y + lane.h) * dpr) - Y0;
    const data = tl.layer.getContext("2d").getImageData(X0, Y0, W, H).data;
    const cols = [];
    for (let x = 0; x < W; x++) {
        const seen = new Set();
        for (let y = 0; y < H; y++) {
            const o = (y * W + x) * 4;
            if (data[o + 3]) seen.add(`${data[o]},${data[o + 1]},${data[o + 2]},${data[o + 3]}`);
        }
        cols.push([...seen]);
    }
    // the state colours, as pixels
    const c = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    const colours = {};
    for (const st of wsgiscope.store.meta.request_states) {
        if (st === "unknown") continue;
        c.clearRect(0, 0, 1, 1);
        c.fillStyle = tl.colours[st];
        c.fillRect(0, 0, 1, 1);
        colours[st] = [...c.getImageData(0, 0, 1, 1).data].join(",");
    }
    c.clearRect(0, 0, 1, 1);
    c.fillStyle = tl.colours.grid;
    c.fillRect(0, 0, 1, 1);
    const grid = [...c.getImageData(0, 0, 1, 1).data].join(",");
    const sp = wsgiscope.store.reqSpans;
    return {
        cols, colours, grid, W, X0, dpr, left: sc.left, width: sc.width, t0: sc.t0, t1: sc.t1,
        known: wsgiscope.store.lastT, states: wsgiscope.store.meta.request_states,
        spans: { a: [...sp.a.subarray(0, sp.n)], b: [...sp.b.subarray(0, sp.n)],
                 s: [...sp.s.subarray(0, sp.n)], k: [...sp.k.subarray(0, sp.n)] },
    };
}"""


def span_columns(v, i):
    """The device pixel columns span ``i`` touches in the view (none when out of view)."""
    sp = v["spans"]
    a, b = sp["a"][i], sp["b"][i]
    if b < v["t0"] or a > v["t1"] or a > v["known"]:
        return range(0)

    def x(t):  # the page's time -> device pixel column, in the same operations
        kx = (v["width"] / (v["t1"] - v["t0"])) * v["dpr"]
        return (t - v["t0"]) * kx + (v["left"] * v["dpr"] - v["X0"])

    xa, xb = x(a), x(min(b, v["known"]))
    c0, c1 = math.floor(xa), math.ceil(xb)
    if c1 <= c0:
        c1 = c0 + 1
    return range(max(c0, 0), min(c1, v["W"]))


def test_sub_pixel_spans_colour_every_pixel_column_they_are_in(page, live_server):
    open_whole_run(page, live_server, CROWD_AND_ONE)
    page.evaluate("wsgiscope.scale.fit(); wsgiscope.player.seek(wsgiscope.player.t)")
    settle(page)
    v = page.evaluate(LANE_PIXELS)
    n = len(v["spans"]["a"])
    assert n > 4000  # past the point where the rows are rasterised
    expected: set[int] = set()
    for i in range(n):
        expected.update(span_columns(v, i))
    palette = set(v["colours"].values())
    drawn = {x for x, seen in enumerate(v["cols"]) if palette & set(seen)}
    assert drawn == expected
    # every pixel of the lane is a state's colour or the time grid's: nothing blended or lost
    assert {c for seen in v["cols"] for c in seen} <= palette | {v["grid"]}
    # the lone request: every span of it narrower than a pixel, alone in its column, shown
    # in the colour of its last state in the legend's order
    lone = max(range(n), key=lambda i: v["spans"]["k"][i])
    lone_id = v["spans"]["k"][lone]
    mine = [i for i in range(n) if v["spans"]["k"][i] == lone_id]
    cols = {c for i in mine for c in span_columns(v, i)}
    others = {c for i in range(n) if v["spans"]["k"][i] != lone_id for c in span_columns(v, i)}
    assert cols and not cols & others
    width = v["width"] * v["dpr"] / (v["t1"] - v["t0"])  # device pixels per ms
    assert all((v["spans"]["b"][i] - v["spans"]["a"][i]) * width < 1 for i in mine)
    for c in cols:
        on_top = max(v["spans"]["s"][i] for i in mine if c in span_columns(v, i))
        assert set(v["cols"][c]) & palette == {v["colours"][v["states"][on_top]]}
    page.locator("#timeline-wrap").screenshot(path=str(ARTIFACTS / "timeline-sub-pixel.png"))
    # zoomed in to the middle of the crowd (still thousands of spans in view): the same
    page.evaluate("""() => { const sc = wsgiscope.scale; sc.t0 = 5000; sc.t1 = 25000;
                             sc.clamp(); wsgiscope.player.seek(wsgiscope.player.t); }""")
    settle(page)
    v = page.evaluate(LANE_PIXELS)
    expected = set()
    in_view = 0
    for i in range(n):
        cols_i = span_columns(v, i)
        in_view += len(cols_i) > 0
        expected.update(cols_i)
    assert in_view > 4000
    assert {x for x, seen in enumerate(v["cols"]) if palette & set(seen)} == expected
    assert page.console.errors == []


def test_a_request_row_of_a_large_run_hovers_and_opens_the_inspector(page, live_server):
    open_whole_run(page, live_server, CROWD_AND_ONE)
    page.evaluate("wsgiscope.scale.fit(); wsgiscope.player.seek(wsgiscope.player.t)")
    settle(page)
    box = page.locator("#timeline").bounding_box()
    # the row of a request in the crowd (rows are a fraction of a pixel: whichever is there)
    x, y = page.evaluate("""() => {
        const tl = wsgiscope.timeline, lane = tl.lanes.find((l) => l.kind === "requests");
        const r = wsgiscope.store.byId.get(1500);
        return [wsgiscope.scale.x((r.sent + r.finished) / 2), lane.y + lane.h / 2];
    }""")
    page.evaluate(f"window.scrollBy(0, {box['y'] + y - 400})")  # the row on screen
    box = page.locator("#timeline").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_selector("#tooltip:not([hidden])")
    tip = page.locator("#tooltip").inner_text()
    m = re.search(r"user (\d+): ", tip)
    assert m, tip
    rid = int(m.group(1)) - 1
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function(f"document.querySelector('#inspector h2') && document.querySelector("
                           f"'#inspector h2').textContent.includes('user {rid + 1}')")
    assert page.evaluate("wsgiscope.timeline.selected") == rid
    assert page.console.errors == []


def pct(values, q):
    """A percentile as the page's sorted-array formula gives it (the same IEEE operations)."""
    if not values:
        return None
    pos = (len(values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


FIGURES = """async (t) => {
    const { latencyFigures, figures } = await import("/static/js/metrics.js");
    const s = wsgiscope.store, m = s.doneAt(t);
    const rows = Object.fromEntries(figures(s, t, s.frameAt(t)).rows);
    return { m, lat: latencyFigures(s, m), rows };
}"""


def test_metrics_at_the_playhead_equal_a_sort_of_the_records(page, live_server):
    open_whole_run(page, live_server, MIXED)
    records = page.evaluate("""() => wsgiscope.store.done.map((r, i) => [r.id, r.sent, r.finished,
        r.status, r.http, wsgiscope.store.doneT[i]])""")
    assert len(records) > 1000
    assert any(r[3] != "ok" for r in records) and len({round(r[2] - r[1]) for r in records
                                                       if r[2] is not None}) > 100
    end = page.evaluate("wsgiscope.store.end")
    fmt = "async (v) => (await import('/static/js/scale.js')).fmtDur(v)"
    for frac in (0.003, 0.1, 0.37, 0.5, 0.81, 1.0):
        t = end * frac
        got = page.evaluate(FIGURES, t)
        m = sum(1 for r in records if r[5] <= t + 1e-9)
        assert got["m"] == m
        lats = sorted(r[2] - r[1] for r in records[:m] if r[2] is not None)
        want = {"count": len(lats), "p50": pct(lats, 50), "p95": pct(lats, 95),
                "p99": pct(lats, 99), "max": lats[-1] if lats else None}
        assert got["lat"] == want, (t, got["lat"], want)
        for name in ("p50", "p95", "p99", "max"):
            assert got["rows"][f"latency {name}"] == page.evaluate(fmt, want[name])
        ok = sum(1 for r in records[:m] if r[3] == "ok")
        assert got["rows"]["completed"].startswith(f"{ok} of ")
        assert got["rows"]["failed"].split(" ")[0] == str(m - ok)
    # the page's own rows and slowest table at the playhead (the whole run)
    page.evaluate(f"wsgiscope.player.seek({end * 0.6})")
    settle(page)
    page.wait_for_timeout(300)
    t = page.evaluate("wsgiscope.player.t")
    m = sum(1 for r in records if r[5] <= t + 1e-9)
    lats = sorted(r[2] - r[1] for r in records[:m] if r[2] is not None)
    shown = page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#metrics > div')]
        .map((d) => [d.dataset.metric, d.querySelector('dd').textContent]))""")
    assert shown["latency p95"] == page.evaluate(fmt, pct(lats, 95))
    done = [r for r in records[:m] if r[2] is not None]
    slowest = sorted(done, key=lambda r: -(r[2] - r[1]))[:6]  # a stable sort, as the page's was
    ids = page.evaluate("[...document.querySelectorAll('#slowest tbody tr')]"
                        ".map(r => +r.dataset.req)")
    assert ids == [r[0] for r in slowest]
    assert page.console.errors == []


def test_the_heat_maps_percentiles_equal_a_sort_of_each_window(page, live_server):
    open_whole_run(page, live_server, MIXED)
    records = page.evaluate("""() => wsgiscope.store.done.map((r) => [r.sent, r.finished])""")
    end = page.evaluate("wsgiscope.store.end")
    for t0, t1, t in ((0, end, end), (0, end, end * 0.55), (end * 0.2, end * 0.45, end),
                      (end * 0.3, end * 0.31, end * 0.305)):
        cells = page.evaluate("""([t0, t1, t]) => {
            const sc = wsgiscope.scale, hm = wsgiscope.heatmap;
            sc.t0 = t0; sc.t1 = t1; sc.version++;
            const c = hm.compute(t);
            return { cols: c.cols, windows: c.windows, colPx: hm.colPx, t0: sc.t0, t1: sc.t1,
                     width: sc.width };
        }""", [t0, t1, t])
        ms_per_col = (cells["t1"] - cells["t0"]) / cells["cols"]
        lists: dict[int, list[float]] = {}
        for sent, fin in records:
            if fin is None or fin > t or fin < cells["t0"] or fin > cells["t1"]:
                continue
            c = min(cells["cols"] - 1, math.floor((fin - cells["t0"]) / ms_per_col))
            lists.setdefault(c // 6, []).append(max(fin - sent, 0.01))
        want = [{"w": w, "n": len(v), "p": [pct(sorted(v), q) for q in (50, 95, 99)]}
                for w, v in sorted(lists.items())]
        assert cells["windows"] == want, (t0, t1, t)
    page.evaluate("wsgiscope.scale.fit(); wsgiscope.player.seek(wsgiscope.player.t)")
    assert page.console.errors == []
