"""The keyboard drives the player wherever focus is, except in a text field; every control
is reachable with Tab and labelled (axe-core finds no serious or critical violation)."""

import pytest
from pagekit import ARTIFACTS, axe_violations, playhead, ready

pytestmark = pytest.mark.browser

t = playhead


def test_picking_a_lesson_with_the_keyboard_hands_the_keys_to_the_player(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    page.locator("#preset").focus()
    page.keyboard.press("ArrowDown")  # the next lesson in the picker
    ready(page, "Ten users, a thread each")
    page.wait_for_function("document.activeElement.id === 'btn-play'")
    # → steps inside this lesson; it does not load the next one
    page.keyboard.press("ArrowRight")
    assert t(page) > 0
    assert page.locator("#preset").input_value() == "dev-threaded"
    assert page.evaluate("wsgiscope.store.meta.name") == "Ten users, a thread each"
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t === wsgiscope.store.end")
    page.keyboard.press("Home")
    assert t(page) == 0
    page.keyboard.press("Space")
    page.wait_for_function("wsgiscope.player.playing")
    page.keyboard.press("Space")
    page.wait_for_function("!wsgiscope.player.playing")
    assert page.console.errors == []


def test_a_focused_dropdown_does_not_swallow_the_players_keys(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    for select in ("#speed", "#preset"):
        page.locator(select).focus()
        before = page.locator(select).input_value()
        page.keyboard.press("Home")
        assert t(page) == 0
        page.keyboard.press("ArrowRight")
        assert t(page) > 0
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("End")
        page.wait_for_function("wsgiscope.player.t === wsgiscope.store.end")
        page.keyboard.press("Home")
        page.keyboard.press("Space")
        page.wait_for_function("wsgiscope.player.playing")
        page.keyboard.press("Space")
        page.wait_for_function("!wsgiscope.player.playing")
        assert page.locator(select).input_value() == before
        assert page.evaluate("wsgiscope.store.meta.name") == "Ten users, one thread"
    # choosing a speed with the keyboard hands the keys back too
    page.locator("#speed").focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("document.activeElement.id === 'btn-play'")
    assert page.evaluate("wsgiscope.player.speed") == 2
    assert page.console.errors == []


def test_a_text_field_keeps_its_keys(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    field = page.locator("#f-name")
    field.fill("")
    field.focus()
    page.keyboard.type("my run")
    for key in ("ArrowLeft", "ArrowRight", "Home", "End", "Space"):
        page.keyboard.press(key)
    assert field.input_value() == "my run "
    assert t(page) == 0
    assert not page.evaluate("wsgiscope.player.playing")


def test_every_control_is_reachable_with_tab(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    page.locator(".exports summary").click()  # open menus count too
    page.locator(".advanced summary").click()
    page.locator("body").focus()
    wanted = page.evaluate("""() => [...document.querySelectorAll(
        'button, select, input, textarea, summary, a[href]')]
        .filter(e => !e.disabled && e.getClientRects().length && !e.closest('[hidden]'))
        .map(e => e.id || e.name || e.textContent.trim())""")
    reached = []
    for _ in range(len(wanted) + 20):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("""() => { const e = document.activeElement;
            return e.id || e.name || e.textContent.trim(); }"""))
    missing = [w for w in wanted if w not in reached]
    assert missing == []


def test_axe_finds_no_serious_violation(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    assert axe_violations(page) == []
    # with the menus open, a request inspected and the run at its end
    page.locator(".exports summary").click()
    page.locator(".advanced summary").click()
    page.locator("#btn-end").click()
    page.wait_for_function("wsgiscope.store.complete")
    page.locator("#slowest tbody tr").first.click()
    page.wait_for_function("document.querySelector('#inspector h2').textContent.includes('user')")
    assert axe_violations(page) == []
    page.screenshot(path=str(ARTIFACTS / "a11y-checked.png"), full_page=True)


def test_the_timeline_and_the_slowest_table_inspect_from_the_keyboard(page, live_server):
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    page.locator("#btn-end").click()
    page.wait_for_function("wsgiscope.store.complete")
    heading = "document.querySelector('#inspector h2').textContent"
    page.locator("#timeline").focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"{heading}.includes('user 1 ')")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"{heading}.includes('user 2 ')")
    page.locator("#slowest tbody tr").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{heading}.includes('user 10')")
    assert page.console.errors == []


def test_axe_in_projector_mode_with_a_question_and_a_room(page, live_server):
    page.goto(f"{live_server}/?preset=gevent-cpu&projector=1")
    ready(page)
    assert axe_violations(page, impacts=("moderate", "serious", "critical")) == []
    page.locator("#btn-room").click()
    page.wait_for_selector("#room-overlay .room-qr svg")
    assert axe_violations(page) == []
    page.locator("#room-overlay .room-close").click()
    page.locator("#room-answers").click()
    assert axe_violations(page) == []
    assert page.console.errors == []
