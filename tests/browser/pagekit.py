"""What the browser tests share: waiting for a run, the playhead, axe-core."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1.min.js"
READY = "window.wsgiscope && wsgiscope.store.meta && wsgiscope.store.n > 0"


def ready(page, name=None):
    """Wait until the page holds frames of a run (called ``name``, when given)."""
    cond = READY if name is None else f"{READY} && wsgiscope.store.meta.name === {name!r}"
    page.wait_for_function(cond)


def settle(page):
    """Wait two animation frames, so the page has drawn what the last action did."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def playhead(page):
    settle(page)
    return page.evaluate("wsgiscope.player.t")


def axe_violations(page, impacts=("serious", "critical")):
    """axe-core's violations of the page as it is now, of the given impacts: a list of
    ``"<impact> <rule>: <selector> ..."`` lines (empty when the page passes)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    out = []
    for v in found["violations"]:
        if v["impact"] in impacts:
            targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:6])
            out.append(f"{v['impact']} {v['id']}: {targets}")
    return out


def walk_stages(page, last="write → close", limit=40):
    """Press "stage →" in the request inspector until the ``last`` stage (or no stage) is
    under the playhead; check each time that the playhead sits at that stage's start. The
    stages seen, in order, once each."""
    seen = []
    for _ in range(limit):
        page.get_by_role("button", name="stage →").click()
        settle(page)
        now = page.locator("#inspector ol.lifecycle li.now")
        if now.count() == 0:
            break
        step = now.first.get_attribute("data-step")
        assert abs(playhead(page) - float(now.first.get_attribute("data-start"))) < 1e-3
        if not seen or seen[-1] != step:
            seen.append(step)
        if step == last:
            break
    return seen
