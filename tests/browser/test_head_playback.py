"""A large run on the page: it plays from its head, the whole run takes its place under the
playhead, and the page still seeks and ends as with any run."""

from __future__ import annotations

import pytest
from pagekit import ready, settle

pytestmark = pytest.mark.browser

LARGE = {
    "name": "a large run",
    "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 4},
    "machine": {"cores": 2},
    "endpoints": {"/io": [{"cpu_ms": 1}, {"io_ms": {"exp": 60}}], "/cpu": [{"cpu_ms": 15}]},
    "workload": [{"poisson": {"rate_per_s": 40, "duration_s": 75},
                  "paths": {"/io": 0.9, "/cpu": 0.1}}],
}


def test_a_large_run_plays_from_its_head_then_seeks_and_ends(page, live_server):
    page.goto(live_server)
    ready(page)
    page.evaluate("s => wsgiscope.player.start(s, 11, true)", LARGE)
    page.wait_for_function("wsgiscope.stats.heads >= 1 && wsgiscope.store.n > 0 && "
                           "wsgiscope.store.meta.name === 'a large run'")
    assert page.evaluate("wsgiscope.store.meta.n_requests") > 2500
    # the whole run replaces the head while it plays: same frames, the playhead carries on
    page.wait_for_function("wsgiscope.stats.replaced >= 1 && !wsgiscope.store.meta.partial")
    before = page.evaluate("wsgiscope.player.t")
    settle(page)
    info = page.evaluate("""() => { const s = wsgiscope.store; return {
        t: wsgiscope.player.t, playing: wsgiscope.player.playing, n: s.n,
        summary: s.meta.summary, end: s.end, partial: document.body.dataset.partial }; }""")
    assert info["playing"] and info["t"] >= before > 0
    assert info["summary"]["requests"] == page.evaluate("wsgiscope.store.meta.n_requests")
    assert info["partial"] == "false"
    # seek past what was sent, then play at full speed to the end
    page.evaluate("wsgiscope.player.pause()")
    half = info["end"] / 2
    page.evaluate("t => wsgiscope.player.seek(t)", half)
    page.wait_for_function(f"wsgiscope.store.lastT >= {half}")
    settle(page)
    assert abs(page.evaluate("wsgiscope.player.t") - half) < 1e-6
    page.evaluate("wsgiscope.player.setSpeed('max'); wsgiscope.player.play()")
    page.wait_for_function("wsgiscope.store.complete && !wsgiscope.player.playing",
                           timeout=60_000)
    settle(page)
    end = page.evaluate("[wsgiscope.player.t, wsgiscope.store.end, wsgiscope.store.n, "
                        "wsgiscope.store.meta.n_frames]")
    assert abs(end[0] - end[1]) < 1e-6 and end[2] == end[3]
    assert page.evaluate("wsgiscope.store.done.length") == page.evaluate(
        "wsgiscope.store.meta.n_requests")
    assert page.console.errors == []
