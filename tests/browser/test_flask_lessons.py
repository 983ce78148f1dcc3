"""Every inside-Flask lesson plays in the page, and a request of each can be stepped through
stage by stage in the inspector, in real Chromium against ``wsgiscope serve``."""

from __future__ import annotations

import pytest
from pagekit import ready, walk_stages

pytestmark = pytest.mark.browser

FLASK_LESSONS = ["flask-short-circuit", "flask-error-path", "flask-no-route", "context-locals",
                 "context-locals-gevent", "lost-update-39", "lost-update-311",
                 "lost-update-lock"]


@pytest.mark.parametrize("name", FLASK_LESSONS)
def test_each_flask_lesson_plays_and_steps(page, live_server, name):
    page.goto(f"{live_server}/?preset={name}")
    ready(page)
    # it plays: the playhead moves forward and the run arrives in full
    page.evaluate("wsgiscope.player.play()")
    page.wait_for_function("wsgiscope.player.t > 0")
    page.evaluate("wsgiscope.player.pause()")
    page.evaluate("wsgiscope.player.seek(wsgiscope.player.end)")
    page.wait_for_function("wsgiscope.store.complete")
    page.evaluate("wsgiscope.stream.send({op: 'inspect', id: 0})")
    page.wait_for_function(
        "document.querySelector('#inspector h2').textContent.includes('user 1')")
    page.evaluate("wsgiscope.player.seek(0)")
    seen = walk_stages(page)
    # the walk goes through the server, Flask's contexts and ends with the write
    assert seen[0] == "socket" and seen[-1] == "write → close", seen
    push, pop = "app ctx push → request ctx push", "teardown (reverse) → ctx pop"
    assert push in seen and pop in seen and seen.index(push) < seen.index(pop)
    assert page.console.errors == []


def test_the_slowest_table_shows_a_404_as_404(page, live_server):
    # the server answered all three, so their status is "ok"; the table said "ok" for the
    # 404 and the 405 the lesson is about
    page.goto(f"{live_server}/?preset=flask-no-route")
    ready(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t === wsgiscope.store.end")
    page.wait_for_function("document.querySelectorAll('#slowest tbody tr').length === 3")
    rows = page.evaluate("""[...document.querySelectorAll('#slowest tbody tr')]
        .map((tr) => [...tr.cells].map((c) => c.textContent))""")
    assert {r[1]: r[3] for r in rows} == {"/home": "ok", "/nowhere": "404", "/upload": "405"}
    assert page.console.errors == []
