"""The page's boxes at a laptop's size: what wraps, wraps as a reader expects."""

from __future__ import annotations

import pytest
from pagekit import ARTIFACTS, ready

pytestmark = pytest.mark.browser


def test_the_export_menus_wrapped_entry_lines_up_with_the_others(page, live_server):
    # "Timeline, projector colours (PNG)" is a button, which centres its text: wrapped in the
    # menu at 1024x768, its two lines sat indented under the links above it
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{live_server}/?preset=convoy-threads")
    ready(page)
    page.locator(".exports summary").click()
    lines = page.evaluate("""(() => {
        const menu = document.querySelector('.exports ul');
        const out = [];
        for (const li of menu.querySelectorAll('li')) {
            const entry = li.firstElementChild, r = document.createRange();
            r.selectNodeContents(entry);
            for (const box of r.getClientRects()) out.push([entry.textContent, box.left]);
        }
        return out; })()""")
    page.screenshot(path=str(ARTIFACTS / "export-menu-1024.png"))
    wrapped = [left for text, left in lines if text.startswith("Timeline, projector")]
    assert len(wrapped) >= 2, "expected the entry to wrap at this size"
    lefts = {round(left) for _, left in lines}
    assert max(lefts) - min(lefts) <= 1, lines
    assert page.console.errors == []


def test_the_inspectors_figures_keep_their_units(page, live_server):
    # the summary line wraps at 1024x768; "kernel queue 0.2 ms" broke between "0.2" and "ms"
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{live_server}/?preset=flask-lifecycle")
    ready(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t === wsgiscope.store.end")
    page.locator("#slowest tbody tr").first.click()
    page.wait_for_selector("#inspector .inspect-summary")
    split = page.evaluate(r"""(() => {
        const p = document.querySelector('#inspector .inspect-summary'), out = [];
        const walk = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            for (const m of node.data.matchAll(/\d+(?:\.\d+)?\s+m?s\b/g)) {
                const r = document.createRange();
                r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
                const tops = new Set([...r.getClientRects()].map((b) => Math.round(b.top)));
                if (tops.size > 1) out.push(m[0]);
            }
        }
        return out; })()""")
    page.locator("#inspector").screenshot(path=str(ARTIFACTS / "inspector-summary-1024.png"))
    assert split == []
    assert page.console.errors == []
