"""Text on the canvases stays readable: no label drawn over another, none cut off at the
edge of the area it belongs to. The page's fillText calls are recorded (with the box each
text takes, in CSS pixels) by a script that runs before the page's own."""

from __future__ import annotations

import pytest
from pagekit import ARTIFACTS, ready, settle

pytestmark = pytest.mark.browser

# Every fillText, with its canvas, its box in CSS pixels and the font; a canvas's list
# starts again when the whole canvas is cleared (a new drawing).
RECORD_TEXT = """(() => {
  const P = CanvasRenderingContext2D.prototype, fill = P.fillText, clear = P.clearRect;
  window.__texts = new Map();
  P.clearRect = function (x, y, w, h) {
    const whole = x <= 0 && y <= 0 && w * this.getTransform().a >= this.canvas.width - 1;
    if (whole) window.__texts.set(this.canvas, []);
    return clear.apply(this, arguments);
  };
  P.fillText = function (text, x, y) {
    const m = this.getTransform(), tm = this.measureText(text), dpr = window.devicePixelRatio || 1;
    const w = tm.width, a = this.textAlign;
    const x0 = a === "center" ? x - w / 2 : a === "right" || a === "end" ? x - w : x;
    const list = window.__texts.get(this.canvas) || [];
    window.__texts.set(this.canvas, list);
    list.push({ text: String(text), font: this.font,
      x0: (m.a * x0 + m.e) / dpr, x1: (m.a * (x0 + w) + m.e) / dpr,
      y0: (m.d * (y - tm.actualBoundingBoxAscent) + m.f) / dpr,
      y1: (m.d * (y + tm.actualBoundingBoxDescent) + m.f) / dpr });
    return fill.apply(this, arguments);
  };
})();"""


def texts(page, canvas_js):
    """The texts drawn on the canvas ``canvas_js`` (a JS expression) in its last drawing."""
    return page.evaluate(f"(window.__texts.get({canvas_js}) || []).map((t) => ({{...t}}))")


def overlaps(boxes, min_px=1):
    """The pairs of boxes that share more than ``min_px`` in both directions."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            ox = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            oy = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if ox > min_px and oy > min_px:
                out.append((a["text"], b["text"]))
    return out


def open_at_end(page, live_server, preset, size=(1024, 768), projector=False):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.add_init_script(RECORD_TEXT)
    page.goto(f"{live_server}/?preset={preset}" + ("&projector=1" if projector else ""))
    ready(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t === wsgiscope.store.end")
    settle(page)


@pytest.mark.parametrize("preset", ["gunicorn-gthread-1x4", "gthread-hoarding"])
def test_thread_labels_start_where_the_thread_takes_the_request(page, live_server, preset):
    # gthread's main thread accepts every connection at once: a label put where the request
    # was accepted, not where its thread took it, lands on the thread's first request
    open_at_end(page, live_server, preset)
    lanes = page.evaluate("""wsgiscope.timeline.lanes.filter((l) => l.kind === "thread")
                             .map((l) => [l.y, l.y + l.h])""")
    labels = [t for t in texts(page, "wsgiscope.timeline.layer") if t["text"].startswith("user ")
              and any(a <= (t["y0"] + t["y1"]) / 2 <= b for a, b in lanes)]
    page.screenshot(path=str(ARTIFACTS / f"thread-labels-{preset}.png"))
    assert labels, "no request labelled on its thread"
    assert overlaps(labels) == []
    if preset == "gunicorn-gthread-1x4":  # waves of four: users 5-8 start at 1 s
        x = page.evaluate("wsgiscope.scale.x(1000)")
        fifth = next(t for t in labels if t["text"] == "user 5")
        assert x <= fifth["x0"] <= x + 12
    assert page.console.errors == []


def inside(box, width, height):
    return (box["x0"] >= -0.5 and box["y0"] >= -0.5
            and box["x1"] <= width + 0.5 and box["y1"] <= height + 0.5)


@pytest.mark.parametrize("preset", ["dev-threaded", "backlog-overflow"])
def test_heat_map_labels_fit_in_projector_type(page, live_server, preset):
    # projector type is 1.45 times larger: the top decade's label stuck out of the canvas
    # ("10 s", 2 px above it) and the lowest one ran into the legend of the lines ("p99")
    open_at_end(page, live_server, preset, projector=True)
    w, h = page.evaluate("[wsgiscope.heatmap.w, wsgiscope.heatmap.h]")
    labels = texts(page, "document.getElementById('heatmap')")
    page.locator("#heat-wrap").screenshot(path=str(ARTIFACTS / f"heatmap-projector-{preset}.png"))
    assert any(t["text"] == "p99" for t in labels)
    assert [t["text"] for t in labels if not inside(t, w, h)] == []
    assert overlaps(labels) == []
    assert page.console.errors == []


def test_a_failure_at_the_runs_end_keeps_its_words(page, live_server):
    # slow-clients-gevent's two slow uploads are cut off at the run's last instant: their
    # "✕ reset" was drawn right of the mark, past the plot's edge, where the clip hid it
    open_at_end(page, live_server, "slow-clients-gevent")
    left, width = page.evaluate("[wsgiscope.scale.left, wsgiscope.scale.width]")
    marks = [t for t in texts(page, "wsgiscope.timeline.layer") if t["text"].startswith("✕")]
    page.locator("#timeline-wrap").screenshot(path=str(ARTIFACTS / "failure-at-the-end.png"))
    assert [t["text"] for t in marks] == ["✕ reset", "✕ reset"]
    assert all(left <= t["x0"] and t["x1"] <= left + width for t in marks)
    assert page.console.errors == []


@pytest.mark.parametrize("preset,projector", [("mm8-queue", False), ("convoy-processes", True)])
def test_row_labels_of_thin_rows_stay_apart(page, live_server, preset, projector):
    # rows thinner than the type are named every few rows, and the last row always: its
    # label landed on the one before ("user 826" over "user 834" in mm8-queue, "user 21"
    # twice in convoy-processes in projector type), and the first stuck out of the lane
    open_at_end(page, live_server, preset, projector=projector)
    top, bottom, n = page.evaluate("""(() => {
        const l = wsgiscope.timeline.lanes.find((l) => l.kind === "requests");
        return [l.y, l.y + l.h, wsgiscope.store.meta.n_requests]; })()""")
    rows = [t for t in texts(page, "wsgiscope.timeline.layer")
            if t["text"].startswith("user ") and t["x0"] < 20]
    page.locator("#timeline-wrap").screenshot(path=str(ARTIFACTS / f"row-labels-{preset}.png"))
    names = [t["text"] for t in rows]
    assert names[0] == "user 1" and names[-1] == f"user {n}" and len(set(names)) == len(names)
    assert overlaps(rows) == []
    assert all(top - 1 <= t["y0"] and t["y1"] <= bottom + 1 for t in rows)
    assert page.console.errors == []


@pytest.mark.parametrize("size", [(1024, 768), (1400, 900)])
def test_the_accept_label_fits_its_gap(page, live_server, size):
    # "accept()" over the arrow from the backlog to the server ran 6-10 px into the server's
    # box, which is drawn after it: the page read "accept"
    open_at_end(page, live_server, "dev-single-thread", size=size)
    if page.locator(".quiz-close").is_visible():  # the revealed answer covers the house
        page.locator(".quiz-close").click()
        settle(page)
    drawn = {t["text"]: t for t in texts(page, "document.getElementById('house')")}
    page.locator(".house-wrap").screenshot(path=str(ARTIFACTS / f"house-accept-{size[0]}.png"))
    assert drawn["accept()"]["x1"] <= drawn["Server"]["x0"]  # the server column's left edge
    assert drawn["accept()"]["x0"] >= drawn["0 waiting"]["x0"]
    assert "dev server (1 process, 1 thread)" in drawn  # the server's box kept its width
    assert page.console.errors == []
