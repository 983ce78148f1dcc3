"""The guided tour: next and previous lesson from the keyboard, a question before the run
plays, the answer checked against the run when it has played, the lesson's focus."""

import pytest
from pagekit import ARTIFACTS, ready, settle
from wsgiscope import simulator

pytestmark = pytest.mark.browser


def run_of(name):
    return simulator.run(simulator.presets.get(name).scenario)


def play_to_end(page):
    page.select_option("#speed", "max")
    page.keyboard.press("Space")
    page.wait_for_function("wsgiscope.store.complete && wsgiscope.player.t === wsgiscope.store.end")
    page.wait_for_selector('#quiz[data-state="reveal"]')
    settle(page)


def test_predict_a_number_then_the_run_answers(page, live_server):
    truth = run_of("dev-single-thread").requests[9]
    latency_s = (truth.finished_ms - truth.sent_ms) / 1000
    page.goto(f"{live_server}/?preset=dev-single-thread")
    ready(page)
    quiz = page.locator("#quiz")
    assert quiz.is_visible() and "tenth wait" in quiz.inner_text()
    assert page.locator("#narration").is_hidden()  # the question first
    page.locator("#quiz-answer").fill("5")
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement.id === 'btn-play'")
    assert "Your prediction: 5 s" in quiz.inner_text()
    play_to_end(page)
    text = quiz.inner_text()
    assert f"{latency_s:.3f} s" in text  # read from the run, not from the lesson file
    assert "You said 5 s" in text and "Not quite" in text
    assert quiz.get_attribute("data-result") == "wrong"
    assert "Takeaway:" in text
    # a right prediction
    page.keyboard.press("n")
    ready(page, "Ten users, a thread each")
    page.keyboard.press("p")
    ready(page, "Ten users, one thread")
    page.locator("#quiz-answer").fill(f"{latency_s:.1f}")
    page.keyboard.press("Enter")
    page.select_option("#speed", "max")
    page.locator("#btn-play").focus()
    play_to_end(page)
    assert quiz.get_attribute("data-result") == "right"
    assert "Right" in quiz.inner_text()
    page.screenshot(path=str(ARTIFACTS / "question-revealed.png"))
    assert page.console.errors == []


def test_a_choice_question(page, live_server):
    page.goto(f"{live_server}/?preset=gevent-cpu")
    ready(page)
    page.locator('#quiz [data-option="1"]').click()  # "the last /ping": it is not
    play_to_end(page)
    quiz = page.locator("#quiz")
    assert quiz.get_attribute("data-result") == "wrong"
    right = quiz.locator("li.right").inner_text()
    assert right.startswith("the /crunch: 1.50")
    assert page.console.errors == []


def test_a_click_on_the_timeline_answers_a_click_question(page, live_server):
    end = run_of("gunicorn-sync-2").requests[9].finished_ms
    page.goto(f"{live_server}/?preset=gunicorn-sync-2")
    ready(page)
    box = page.locator("#timeline").bounding_box()
    x = page.evaluate(f"wsgiscope.scale.x({end})")
    page.mouse.click(box["x"] + x, box["y"] + 60)
    page.wait_for_function("document.querySelector('#quiz').textContent"
                           ".includes('Your answer: T =')")
    assert page.evaluate("wsgiscope.timeline.marks.length") == 1
    page.locator("#quiz button.primary").click()
    play_to_end(page)
    assert page.locator("#quiz").get_attribute("data-result") == "right"
    assert page.evaluate("wsgiscope.timeline.marks.map(m => m.kind)") == ["guess", "truth"]
    assert page.console.errors == []


def test_next_and_previous_lesson_from_the_keyboard_and_the_header(page, live_server):
    names = list(simulator.presets.PRESETS)
    page.goto(f"{live_server}/?preset={names[0]}")
    ready(page)
    assert page.locator("#tour-prev").is_disabled()
    page.locator("#clock").click()
    page.keyboard.press("n")
    ready(page, simulator.load_scenario(simulator.presets.get(names[1]).scenario).name)
    page.keyboard.press("PageDown")
    ready(page, simulator.load_scenario(simulator.presets.get(names[2]).scenario).name)
    assert page.locator("#preset").input_value() == names[2]
    assert page.locator("#tour-pos").inner_text() == f"3 / {len(names)}"
    page.keyboard.press("PageUp")
    ready(page, simulator.load_scenario(simulator.presets.get(names[1]).scenario).name)
    page.locator("#tour-next").click()
    ready(page, simulator.load_scenario(simulator.presets.get(names[2]).scenario).name)
    page.wait_for_function("document.activeElement.id === 'btn-play'")
    # the keys still drive the player after a lesson change
    page.keyboard.press("ArrowRight")
    settle(page)
    assert page.evaluate("wsgiscope.player.t") > 0
    assert page.console.errors == []


def test_a_lesson_opens_on_its_focus(page, live_server):
    focus = simulator.presets.get("convoy-threads").focus
    page.goto(f"{live_server}/?preset=convoy-threads")
    ready(page)
    page.wait_for_function(f"Math.abs(wsgiscope.scale.t0 - {focus['from_ms']}) < 0.5 && "
                           f"Math.abs(wsgiscope.scale.t1 - {focus['to_ms']}) < 0.5")
    assert page.evaluate("wsgiscope.timeline.selected") == focus["request"] - 1
    assert focus["note"] in page.locator("#focus-note").inner_text()
    page.locator("#btn-focus").click()  # the whole run, and back
    page.wait_for_function("wsgiscope.scale.t1 - wsgiscope.scale.t0 >= wsgiscope.scale.end - 1e-6")
    page.locator("#btn-focus").click()
    page.wait_for_function(f"Math.abs(wsgiscope.scale.t0 - {focus['from_ms']}) < 0.5")
    assert page.console.errors == []


@pytest.mark.parametrize("lesson", ["convoy-threads", "gil-cpu-threads", "globals-race"])
def test_reduced_motion_jumps_to_the_focus_in_projector_mode(browser, live_server, lesson):
    context = browser.new_context(viewport={"width": 1024, "height": 768},
                                  reduced_motion="reduce")
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live_server}/?preset={lesson}&projector=1")
        ready(page)
        settle(page)
        focus = simulator.presets.get(lesson).focus
        if "from_ms" in focus:  # at once, no animation
            assert page.evaluate("wsgiscope.scale.t0") == pytest.approx(focus["from_ms"], abs=0.5)
            assert page.evaluate("wsgiscope.scale.t1") == pytest.approx(focus["to_ms"], abs=0.5)
        assert page.evaluate(
            "getComputedStyle(document.querySelector('#btn-play')).transitionDuration") == "0s"
        page.keyboard.press("End")
        page.wait_for_function("wsgiscope.store.complete")
        settle(page)
        (ARTIFACTS / "screens").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "screens" / f"projector-1024x768-{lesson}-focus.png"))
        assert page.locator("#quiz").get_attribute("data-state") == "reveal"
        assert "Takeaway:" in page.locator("#quiz").inner_text()
        assert errors == []
    finally:
        context.close()


@pytest.mark.parametrize("projector", [False, True])
@pytest.mark.parametrize("lesson", ["too-many-workers", "flask-error-path", "convoy-threads"])
def test_the_answer_and_the_takeaway_fit_at_1024x768(browser, live_server, lesson, projector):
    """The revealed answer is whole, not behind a scroll, and the timeline's first rows stay
    on the screen under it: on a screen this short the answer takes the house's width (on a
    projector it also keeps the panel's height: test_projector, every row on the screen),
    and the house is back once the answer is closed."""
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.goto(f"{live_server}/?preset={lesson}{'&projector=1' if projector else ''}")
        ready(page)
        page.keyboard.press("End")
        page.wait_for_selector('#quiz[data-state="reveal"]')
        settle(page)
        box = page.evaluate("(() => { const q = document.querySelector('#quiz');"
                            " return [q.scrollHeight, q.clientHeight]; })()")
        assert box[0] <= box[1] + 1, f"the answer scrolls: {box[0]} px in {box[1]}"
        takeaway = page.locator("#quiz .takeaway")
        assert "Takeaway:" in takeaway.inner_text() and takeaway.is_visible()
        (ARTIFACTS / "screens").mkdir(parents=True, exist_ok=True)
        name = f"answer-1024x768-{lesson}{'-projector' if projector else ''}.png"
        page.screenshot(path=str(ARTIFACTS / "screens" / name))
        # the answer used to grow beside the house, pushing the timeline to y=560 and the
        # threads under the fold; now the house's row ends about y=410
        top = page.evaluate("document.querySelector('#timeline-wrap').getBoundingClientRect().top")
        assert top < 768 / 2 + 60, f"the timeline starts {top:.0f} px down"
        house = "document.querySelector('.house-wrap')"
        assert page.evaluate(f"getComputedStyle({house}).visibility") == "hidden"
        page.locator(".quiz-close").click()
        assert page.evaluate(f"getComputedStyle({house}).visibility") == "visible"
        assert page.evaluate("document.querySelector('#house').clientWidth") > 300
    finally:
        context.close()


def test_while_it_plays_the_question_and_the_narration_both_show(browser, live_server):
    """At 1024x768, with the lesson's focus note above it, the waiting question used to be
    squeezed to a 40 px box scrolling 181 px of text; it now takes two lines, and the
    narration keeps room under it."""
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.goto(f"{live_server}/?preset=convoy-threads")
        ready(page)
        page.keyboard.press("Space")  # play without a prediction
        page.wait_for_selector('#quiz[data-state="wait"]')
        page.wait_for_function("document.querySelectorAll('#narration li').length > 2")
        page.keyboard.press("Space")
        settle(page)
        quiz = page.evaluate("(() => { const q = document.querySelector('#quiz');"
                             " return [q.scrollHeight, q.clientHeight]; })()")
        assert quiz[0] <= quiz[1] + 1, f"the question scrolls: {quiz[0]} px in {quiz[1]}"
        assert page.evaluate("document.querySelector('#narration').clientHeight") >= 90
        assert "Your prediction" in page.locator("#quiz").inner_text()
        prompt = page.locator("#quiz .quiz-prompt")
        assert prompt.get_attribute("title") == simulator.presets.get(
            "convoy-threads").question["prompt"]
    finally:
        context.close()
