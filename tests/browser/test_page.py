"""Real Chromium against ``wsgiscope serve``: what a teacher and a class would see."""

import re
from pathlib import Path

import pytest
from wsgiscope import simulator

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser

READY = "window.wsgiscope && wsgiscope.store.meta && wsgiscope.store.n > 0"


def ready(page, name=None):
    if name is None:
        page.wait_for_function(READY)
    else:
        page.wait_for_function(f"{READY} && wsgiscope.store.meta.name === {name!r}")


def state(page):
    # wait for two animation frames, so the page has drawn what the last key did
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.evaluate(
        "({t: wsgiscope.player.t, line: Number(document.body.dataset.line), n: wsgiscope.store.n,"
        " complete: wsgiscope.store.complete, playing: wsgiscope.player.playing,"
        " narration: document.querySelector('#narration li.current')?.textContent || ''})")


LESSON_END_MS = simulator.run(simulator.presets.get("dev-single-thread").scenario).end_ms


def neutral_focus(page):
    page.locator("#clock").click()  # keys go to the page, not a form control


def test_ten_users_one_thread_lesson_plays_to_ten_seconds(page, live_server):
    page.goto(f"{live_server}/?preset=gunicorn-sync-2")
    ready(page)
    page.select_option("#preset", "dev-single-thread")
    ready(page, "Ten users, one thread")
    assert "Ten users, one thread" in page.locator(".run-title").inner_text()
    assert "one request at a time" in page.locator("#lesson").inner_text().lower() or \
        page.locator("#lesson").inner_text()
    page.select_option("#speed", "max")
    page.locator("#btn-play").click()
    page.wait_for_function("wsgiscope.store.complete && !wsgiscope.player.playing")
    s = state(page)
    # the tenth user finishes at about 10 s: the page shows the engine's own end
    assert 9_900 < s["t"] < 10_300
    assert s["t"] == pytest.approx(LESSON_END_MS, abs=1)
    assert page.locator("#clock").inner_text() == f"T = {LESSON_END_MS / 1000:.3f} s"
    metrics = page.locator("#metrics").inner_text()
    assert re.search(r"completed\s+10 of 10", metrics)
    assert re.search(r"latency max\s+10\.\d{3} s", metrics)
    narration = page.locator("#narration").inner_text()
    assert "user 10 gets its response" in narration
    # the staircase: user N finished at about N seconds
    finished = page.evaluate("wsgiscope.store.done.map(r => Math.round(r.finished / 1000))")
    assert sorted(finished) == list(range(1, 11))
    page.screenshot(path=str(ARTIFACTS / "ten-users-end.png"), full_page=True)
    assert page.console.errors == []


def test_step_and_scrub_move_the_playhead_and_narration(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    neutral_focus(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t > 10000")
    frames_held = state(page)["n"]
    page.keyboard.press("Home")
    assert state(page)["t"] == 0
    page.keyboard.press("ArrowRight")
    first = state(page)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    later = state(page)
    assert later["t"] > first["t"] >= 0
    assert later["line"] > first["line"]
    assert later["narration"] != first["narration"]
    page.keyboard.press("ArrowLeft")
    back = state(page)
    assert first["t"] <= back["t"] < later["t"]
    assert back["line"] < later["line"]
    # scrubbing back uses the frames the browser holds: nothing new arrives
    page.locator("#scrub").fill("300")
    s = state(page)
    assert s["t"] == pytest.approx(0.3 * LESSON_END_MS, abs=1)
    assert s["n"] == frames_held
    assert "backlog" in s["narration"] or "accepts" in s["narration"] or s["narration"]
    page.keyboard.press("Space")
    page.wait_for_function("wsgiscope.player.playing")
    page.keyboard.press("Space")
    page.wait_for_function("!wsgiscope.player.playing")
    page.screenshot(path=str(ARTIFACTS / "stepped.png"), full_page=True)
    assert page.console.errors == []


def test_click_a_request_opens_the_inspector(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    neutral_focus(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete")
    box = page.locator("#timeline").bounding_box()
    x, y = page.evaluate("""() => {
        const tl = wsgiscope.timeline, lane = tl.lanes.find(l => l.kind === 'requests');
        return [wsgiscope.scale.x(2500), lane.y + 2.5 * lane.rowH];
    }""")
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_selector("#tooltip:not([hidden])")
    assert "user 3" in page.locator("#tooltip").inner_text()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function("document.querySelector('#inspector h2').textContent.includes('user 3')")
    inspector = page.locator("#inspector").inner_text()
    for stage in ("kernel backlog", "before_request", "teardown", "write"):
        assert stage in inspector
    page.locator("#inspector").screenshot(path=str(ARTIFACTS / "inspector.png"))
    assert page.console.errors == []


def test_bad_input_marks_the_field_and_keeps_the_page(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    page.fill('[name="server.processes"]', "0")
    page.fill('[name="name"]', "my edited run")
    page.locator("#btn-simulate").click()
    error = page.locator('#err-server\\.processes')
    error.wait_for()
    assert "between 1 and 256 (got 0)" in error.inner_text()
    assert page.locator('[name="server.processes"]').get_attribute("aria-invalid") == "true"
    assert page.locator('[name="name"]').input_value() == "my edited run"
    assert page.evaluate("wsgiscope.store.meta.name") == "Ten users, one thread"  # run kept
    page.screenshot(path=str(ARTIFACTS / "bad-input.png"), full_page=True)
    assert [e for e in page.console.errors if "422" not in e] == []
    page.fill('[name="server.processes"]', "4")
    page.locator("#btn-simulate").click()
    ready(page, "my edited run")
    assert page.locator(".error").count() == 0


def test_a_dropped_socket_reconnects_and_resumes(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    page.select_option("#speed", "2")
    page.locator("#btn-play").click()
    page.wait_for_function("wsgiscope.player.t > 500")
    key = page.evaluate("wsgiscope.store.key")
    page.evaluate("wsgiscope.stream.drop()")
    page.wait_for_function("document.querySelector('#conn').dataset.state !== 'open'")
    page.wait_for_function("document.querySelector('#conn').dataset.state === 'open'")
    held = state(page)["n"]
    page.select_option("#speed", "max")
    page.wait_for_function("wsgiscope.store.complete")
    assert page.evaluate("wsgiscope.store.key") == key
    assert page.evaluate("wsgiscope.store.n") == page.evaluate("wsgiscope.store.meta.n_frames")
    assert held > 0
    assert page.evaluate("wsgiscope.stats.errors") == []
    assert page.console.errors == []


def test_share_link_reopens_the_same_run(page, live_server):
    page.goto(f"{live_server}/?preset=gunicorn-gthread-1x4")
    ready(page)
    link = page.locator("#copy-share").get_attribute("data-share")
    assert page.url == link  # the address bar carries it too
    key = page.evaluate("wsgiscope.store.key")
    page.goto("about:blank")
    page.goto(link)
    ready(page)
    assert page.evaluate("wsgiscope.store.key") == key
    assert page.console.errors == []


@pytest.mark.lab
def test_run_it_for_real_draws_the_measured_timeline(page, live_server):
    page.goto(f"{live_server}/?preset=dev-threaded")
    ready(page)
    page.locator("#btn-lab").click()
    page.wait_for_selector("#lab-wrap:not([hidden])", timeout=90_000)
    assert page.evaluate("wsgiscope.labStore.meta.source") == "measured"
    assert page.evaluate("wsgiscope.labStore.meta.n_requests") == 10
    assert page.locator("#comparison .verdict").count() == 1
    figures = page.locator("#comparison table").first.inner_text()
    assert "simulated" in figures and "measured" in figures and "latency max" in figures
    page.screenshot(path=str(ARTIFACTS / "measured.png"), full_page=True)
    assert page.console.errors == []


def test_a_measurement_s_cautions_are_shown_beside_its_verdict(page, live_server):
    page.goto(f"{live_server}/?preset=dev-threaded")
    ready(page)
    steal = ("the virtual machine's host took 0.31 cores' time from it (steal) during the "
             "measurement: the server lost that time too")
    page.evaluate("""(steal) => wsgiscope.showComparison({rows: [], summary: {
        requests: 10, within_tolerance: 7, tolerance: {pct: 10, ms: 30}, agrees: false,
        status_mismatches: 0, cautions: [steal]}})""", steal)
    cautions = page.locator("#comparison .caution")
    assert cautions.count() == 1
    assert cautions.inner_text() == f"Caution: {steal}."
    assert page.console.errors == []


def test_wheel_zooms_drag_pans_and_double_click_fits(page, live_server):
    page.goto(f"{live_server}/?preset=gil-cpu-threads")
    ready(page)
    neutral_focus(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete")
    span = "wsgiscope.scale.t1 - wsgiscope.scale.t0"
    full = page.evaluate(span)
    box = page.locator("#timeline").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 120)
    for _ in range(4):
        page.mouse.wheel(0, -120)
    page.wait_for_function(f"{span} < {full} * 0.6")
    t0 = page.evaluate("wsgiscope.scale.t0")
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + 120, steps=5)
    page.mouse.up()
    assert page.evaluate("wsgiscope.scale.t0") > t0
    page.mouse.dblclick(box["x"] + box["width"] * 0.5, box["y"] + 120)
    page.wait_for_function(f"Math.abs({span} - {full}) < 1e-6")
    page.screenshot(path=str(ARTIFACTS / "gil-threads.png"), full_page=True)
    assert page.console.errors == []


def test_slowest_table_opens_the_inspector(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    neutral_focus(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete")
    first = page.locator("#slowest tbody tr").first
    assert first.inner_text().startswith("user 10")
    first.click()
    page.wait_for_function("document.querySelector('#inspector h2').textContent"
                           ".includes('user 10')")
    assert page.console.errors == []


def test_import_a_scenario_file_and_export_the_timeline_png(page, live_server, tmp_path):
    import json

    from wsgiscope import simulator

    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    scenario = dict(simulator.presets.get("gunicorn-sync-2").scenario, name="imported run")
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    page.set_input_files('input[type="file"][name="file"]', str(path))
    ready(page, "imported run")
    assert page.locator('[name="server.kind"]').input_value() == "gunicorn"
    page.locator(".exports summary").click()
    with page.expect_download() as download:
        page.locator("#export-png").click()
    target = tmp_path / "timeline.png"
    download.value.save_as(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as download:
        page.get_by_text("Chrome trace (opens in Perfetto)").click()
    trace = tmp_path / "trace.json"
    download.value.save_as(trace)
    assert json.loads(trace.read_text())["traceEvents"]
    assert page.console.errors == []
