"""Honest numbers: the metrics agree with the narration and the run, failed requests count,
an edited lesson stops claiming to be the lesson, a shared link keeps it."""

import base64
import json
import re
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from pagekit import ready, settle
from wsgiscope import simulator
from wsgiscope.simulator import frames as sim_frames

pytestmark = pytest.mark.browser


def run_of(name):
    return simulator.run(simulator.presets.get(name).scenario)


def to_end(page):
    page.locator("#btn-end").click()
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t === wsgiscope.store.end")
    settle(page)


def metric(page, name):
    return page.locator(f'#metrics div[data-metric="{name}"] dd').inner_text()


def shared_scenario(link):
    s = parse_qs(urlsplit(link).query)["s"][0]
    return json.loads(zlib.decompress(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))))


def test_failed_requests_count_and_their_latency_is_in_the_stats(page, live_server):
    trace = run_of("worker-timeout")
    failed = [r for r in trace.requests if r.status != "ok"]
    assert [r.http_status for r in failed] == [500]
    slowest = max(r.finished_ms - r.sent_ms for r in trace.requests if r.finished_ms is not None)
    page.goto(f"{live_server}/?preset=worker-timeout")
    ready(page)
    to_end(page)
    assert metric(page, "failed") == "1 (HTTP 500)"
    assert metric(page, "completed") == f"{len(trace.requests) - 1} of {len(trace.requests)}"
    assert metric(page, "latency max") == f"{slowest / 1000:.3f} s"  # the 500 took 2.134 s
    assert page.console.errors == []


def test_backlog_peak_is_the_one_the_narration_tells(page, live_server):
    # a queue of one that empties within a tick: the frames never see it, the spans do
    trace = run_of("convoy-processes")
    peak = trace.summary["max_backlog"]
    assert peak == 1
    page.goto(f"{live_server}/?preset=convoy-processes")
    ready(page)
    to_end(page)
    assert metric(page, "backlog now / peak") == f"0 / {peak}"
    assert f"the backlog peaked at {peak}" in page.locator("#narration").inner_text()
    assert page.console.errors == []


def test_gil_wait_share_is_over_the_work_so_far(page, live_server):
    trace = run_of("convoy-threads")
    page.goto(f"{live_server}/?preset=convoy-threads")
    ready(page)
    to_end(page)
    tick = page.evaluate("wsgiscope.store.meta.tick_ms")
    samples = sim_frames.sample(trace, tick)

    def share(until_ms):
        gil = work = 0
        for f in samples:
            if f["t"] > until_ms + 1e-6:
                break
            for state, _req in f["threads"].values():
                gil += state == "gil"
                work += state in ("gil", "cpu", "io")
        return 100 * gil / work

    at_end = float(metric(page, "GIL wait share").rstrip(" %"))
    assert at_end == pytest.approx(share(trace.end_ms), abs=0.15)
    page.evaluate("wsgiscope.player.seek(1500)")
    settle(page)
    mid_run = float(metric(page, "GIL wait share").rstrip(" %"))
    assert mid_run == pytest.approx(share(1500), abs=0.15)
    assert page.console.errors == []


def test_copy_share_link_copies_and_says_so(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live_server}/?preset=gunicorn-sync-2")
    ready(page)
    button = page.locator("#copy-share")
    button.click()
    page.wait_for_function("document.querySelector('#copy-share').textContent === 'Link copied'")
    assert page.evaluate("navigator.clipboard.readText()") == button.get_attribute("data-share")
    assert page.console.errors == []


def test_simulate_loads_paused(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    page.fill('[name="name"]', "paused run")
    page.locator("#btn-simulate").click()
    ready(page, "paused run")
    page.wait_for_timeout(300)
    assert not page.evaluate("wsgiscope.player.playing")
    assert page.evaluate("wsgiscope.player.t") == 0
    assert page.console.errors == []


def test_an_edited_lesson_is_your_scenario_and_a_shared_lesson_is_the_lesson(page, live_server):
    lesson = simulator.presets.get("gunicorn-sync-2")
    page.goto(f"{live_server}/?preset=gunicorn-sync-2")
    ready(page)
    assert lesson.lesson in page.locator("#lesson").inner_text()
    # unchanged: its share link opens as the lesson
    link = page.locator("#copy-share").get_attribute("data-share")
    page.goto(link)
    ready(page)
    assert page.locator("#preset").input_value() == "gunicorn-sync-2"
    assert lesson.lesson in page.locator("#lesson").inner_text()
    # edited: three workers is not the lesson any more
    page.fill('[name="server.workers"]', "3")
    page.locator("#btn-simulate").click()
    ready(page, "Your scenario (from gunicorn-sync-2)")
    assert page.locator(".run-title").inner_text() == "Your scenario (from gunicorn-sync-2)"
    assert page.locator("#lesson").inner_text().strip() == ""
    assert "pairs finish" not in page.locator(".story").inner_text()
    assert page.locator("#quiz").is_hidden()  # the lesson's question is not this run's
    picked = page.locator("#preset option:checked").inner_text()
    assert picked == "your scenario (from gunicorn-sync-2)"
    link = page.locator("#copy-share").get_attribute("data-share")
    carried = shared_scenario(link)
    assert carried["name"] == "Your scenario (from gunicorn-sync-2)"
    assert lesson.title not in json.dumps(carried) and "gunicorn -w 2" not in carried["name"]
    assert carried["server"]["workers"] == 3
    # and it reopens as that, not as the lesson
    page.goto(link)
    ready(page, "Your scenario (from gunicorn-sync-2)")
    assert page.locator("#preset option:checked").inner_text() == picked
    assert page.locator("#lesson").inner_text().strip() == ""
    # putting it back as it was makes it the lesson again
    page.fill('[name="server.workers"]', "2")
    page.fill('[name="name"]', lesson.scenario["name"])
    page.locator("#btn-simulate").click()
    ready(page, lesson.scenario["name"])
    page.wait_for_function("document.querySelector('#preset').value === 'gunicorn-sync-2'")
    assert lesson.lesson in page.locator("#lesson").inner_text()
    assert re.search(r"[?&]s=", page.url)
    assert [e for e in page.console.errors if "422" not in e] == []
