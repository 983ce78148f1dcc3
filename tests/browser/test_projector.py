"""Projector mode and the default layout on the screens a classroom has: every request row
of a ten-user lesson on a 1024x768 projector, large type, a light page; at 1400x900 the
default lesson's ten users and the form's buttons in sight."""

import pytest
from pagekit import ARTIFACTS, ready, settle
from wsgiscope import simulator

pytestmark = pytest.mark.browser

SHOTS = ARTIFACTS / "screens"
TEN_USERS = [name for name, p in simulator.presets.PRESETS.items()
             if simulator.load_scenario(p.scenario).expected_requests == 10]


@pytest.fixture()
def screen(browser, request):
    """A page of the given viewport size (``request.param``: width, height)."""
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.set_default_timeout(15_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield page
    finally:
        context.close()


def rows_box(page):
    """Where the request rows are on screen: top, bottom, row height (CSS px)."""
    return page.evaluate("""() => {
        const tl = wsgiscope.timeline, lane = tl.lanes.find(l => l.kind === 'requests');
        const top = tl.canvas.getBoundingClientRect().top;
        return {top: top + lane.y, bottom: top + lane.y + lane.h, rowH: lane.rowH};
    }""")


def font_px(page, selector):
    return page.evaluate(
        f"parseFloat(getComputedStyle(document.querySelector({selector!r})).fontSize)")


def in_sight(page, selector):
    """The element's centre is inside the viewport and it is what is drawn there."""
    return page.evaluate(f"""() => {{
        const e = document.querySelector({selector!r}), r = e.getBoundingClientRect();
        const x = r.left + r.width / 2, y = r.top + r.height / 2;
        if (y < 0 || y > innerHeight || x < 0 || x > innerWidth) return false;
        const hit = document.elementFromPoint(x, y);
        return hit === e || e.contains(hit);
    }}""")


@pytest.mark.parametrize("screen", [(1024, 768)], indirect=True)
@pytest.mark.parametrize("lesson", TEN_USERS)
def test_projector_shows_every_row_of_a_ten_user_lesson(screen, live_server, lesson):
    page = screen
    page.goto(f"{live_server}/?preset={lesson}&projector=1")
    ready(page)
    page.locator("#btn-end").click()
    page.wait_for_function("wsgiscope.store.complete")
    settle(page)
    assert page.evaluate("document.documentElement.classList.contains('projector')")
    assert not page.locator("#scenario-panel").is_visible()
    box = rows_box(page)
    assert box["bottom"] <= 768, f"{lesson}: the last request row ends at {box['bottom']:.0f} px"
    assert box["rowH"] >= 10
    page.screenshot(path=str(SHOTS / f"projector-1024x768-{lesson}.png"))
    assert page.errors == []


@pytest.mark.parametrize("screen", [(1024, 768)], indirect=True)
def test_projector_type_is_large_and_the_page_light(screen, live_server):
    page = screen
    page.goto(f"{live_server}/?preset=dev-single-thread&projector=1")
    ready(page)
    page.keyboard.press("End")
    page.wait_for_function("wsgiscope.store.complete")
    settle(page)
    for selector in ("#preset", "#lesson", "#narration li.current", ".legend li", "#btn-play",
                     "#speed", ".metric-grid dt"):
        assert font_px(page, selector) >= 20, selector
    # the canvas labels a class reads: lanes, axis, rows
    assert page.evaluate("wsgiscope.timeline.k") * 14 >= 20
    assert rows_box(page)["rowH"] >= 20
    white = "rgb(255, 255, 255)"
    for selector in ("body", ".top", ".house-wrap", ".timeline-wrap"):
        assert page.evaluate(
            f"getComputedStyle(document.querySelector({selector!r})).backgroundColor") == white
    assert page.errors == []


@pytest.mark.parametrize("screen", [(1400, 900)], indirect=True)
def test_the_projector_toggle(screen, live_server):
    page = screen
    page.goto(f"{live_server}/?preset=gunicorn-sync-2")
    ready(page)
    assert page.locator("#scenario-panel").is_visible()
    page.locator("#toggle-projector").click()
    page.wait_for_function("document.documentElement.classList.contains('projector')")
    assert "projector=1" in page.url
    assert not page.locator("#scenario-panel").is_visible()
    assert page.locator("#toggle-projector").get_attribute("aria-pressed") == "true"
    settle(page)
    assert page.evaluate("wsgiscope.timeline.k") > 1
    page.locator("#toggle-projector").click()
    page.wait_for_function("!document.documentElement.classList.contains('projector')")
    assert "projector" not in page.url
    assert page.locator("#scenario-panel").is_visible()
    assert page.errors == []


@pytest.mark.parametrize("screen", [(1400, 900)], indirect=True)
def test_default_layout_at_1400x900(screen, live_server):
    page = screen
    page.goto(f"{live_server}/")
    ready(page)
    page.evaluate("wsgiscope.player.seek(wsgiscope.store.end * 0.55)")
    settle(page)
    box = rows_box(page)
    assert page.evaluate("wsgiscope.store.meta.n_requests") == 10
    assert box["bottom"] <= 900, f"the last user's row ends at {box['bottom']:.0f} px"
    assert in_sight(page, "#btn-simulate")
    assert in_sight(page, "#btn-lab")
    page.screenshot(path=str(SHOTS / "normal-1400x900.png"))
    assert page.errors == []


@pytest.mark.parametrize("screen", [(1024, 768)], indirect=True)
def test_default_layout_at_1024x768(screen, live_server):
    page = screen
    page.goto(f"{live_server}/")
    ready(page)
    page.evaluate("wsgiscope.player.seek(wsgiscope.store.end * 0.55)")
    settle(page)
    top = page.evaluate("document.querySelector('#timeline').getBoundingClientRect().top")
    assert top < 768 - 150, f"the timeline starts at {top:.0f} px"
    page.screenshot(path=str(SHOTS / "normal-1024x768.png"))
    page.locator("#toggle-panel").click()
    settle(page)
    assert rows_box(page)["top"] < 768
    assert page.errors == []
