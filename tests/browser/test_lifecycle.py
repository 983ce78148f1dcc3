"""Stepping through a request's life in the inspector, and context locals at the playhead,
in real Chromium against ``wsgiscope serve``."""

from __future__ import annotations

import pytest
from pagekit import ARTIFACTS, ready, settle, walk_stages

pytestmark = pytest.mark.browser

# what the refused request (/admin, user 2) goes through: no view at all
REFUSED = ["socket", "WSGI server", "environ", "app ctx push → request ctx push", "URL match",
           "before_request", "make_response → after_request (reverse)",
           "teardown (reverse) → ctx pop", "write → close"]


def open_lesson(page, server, name):
    page.goto(f"{server}/?preset={name}")
    ready(page)
    page.evaluate("wsgiscope.player.seek(wsgiscope.player.end)")
    page.wait_for_function("wsgiscope.store.complete")


def inspect(page, rid):
    page.evaluate(f"wsgiscope.stream.send({{op: 'inspect', id: {rid}}})")
    page.wait_for_function(
        f"document.querySelector('#inspector h2').textContent.includes('user {rid + 1}')")


def test_stepping_through_a_refused_request_stage_by_stage(page, live_server):
    open_lesson(page, live_server, "flask-short-circuit")
    inspect(page, 1)
    labels = page.locator("#inspector .wf-label").all_inner_texts()
    assert "before_request" in labels and "after_request" in labels and "view" not in labels
    assert "401" in page.locator("#inspector .inspect-summary").inner_text()
    page.evaluate("wsgiscope.player.seek(0)")
    seen = walk_stages(page, limit=20)  # the playhead at each stage's start
    assert seen == REFUSED
    assert "at the playhead: write → close" in page.locator(".lifecycle-now").inner_text()
    # and back one stage
    page.get_by_role("button", name="← stage").click()
    settle(page)
    assert page.locator("#inspector li.now").first.get_attribute("data-step") == \
        "teardown (reverse) → ctx pop"
    note = page.locator("#inspector li[data-step='before_request'] .wf-note").inner_text()
    assert "preprocess_request" in note and "returned a 401 response" in note
    page.locator("#inspector").screenshot(path=str(ARTIFACTS / "lifecycle-refused.png"))
    assert page.console.errors == []


def test_context_locals_at_the_playhead_and_the_wrong_read_marked(page, live_server):
    open_lesson(page, live_server, "context-locals")
    panel = page.locator("#contexts")
    page.evaluate("wsgiscope.player.seek(20)")  # both /global requests are in flight
    settle(page)
    text = panel.inner_text()
    assert "request ctx (user 1)" in text and "request ctx (user 2)" in text
    assert "/global" in text and "user = user 2" in text  # the second write won
    page.evaluate("wsgiscope.player.seek(105)")  # user 1 has read it back
    settle(page)
    wrong = panel.locator(".ctx-reads li.wrong")
    assert wrong.count() == 1 and "user 1 read the global user: user 2's value" in \
        wrong.first.inner_text()
    page.evaluate("wsgiscope.player.seek(760)")  # /whoami on a reused pool thread
    settle(page)
    assert "threading.local user: user 5's value ✗" in panel.inner_text()
    assert page.locator("#ctx-marks .ctx-mark.wrong").count() == 2  # the global, the local
    page.locator("#contexts").screenshot(path=str(ARTIFACTS / "context-locals.png"))
    assert page.console.errors == []
