"""Accessibility and field conditions (issue 18), in a real Chromium: axe-core on every screen,
a Tab walk where nothing focused hides under the fixed bars, named week-list rows, errors that
say where, 200 % zoom (a 180 px wide phone), the high-contrast setting, focus on the new screen
after a route change, and the admin pages' names and layout shift."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.service import create_server_records
from tests.browser.conftest import PHONE
from tests.browser.test_dashboard import seed
from tests.browser.test_manage import LAPTOP, open_page, sign_in
from tests.browser.test_pwa import Phone
from tests.county import uid

pytestmark = pytest.mark.browser

AXE = (Path(__file__).resolve().parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
#: more households than a screen holds, so that rows pass under the tab bar
EXTRA_HOUSEHOLDS = 40
#: 200 % zoom on the 360 px phone
ZOOMED = {**PHONE, "viewport": {"width": 180, "height": 370}}

#: the focused element's box against every fixed or sticky box that does not contain it
COVERED = """() => {
  const focused = document.activeElement;
  if (!focused || focused === document.body) return null;
  const r = focused.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) return null;
  for (const bar of document.querySelectorAll("body *")) {
    const position = getComputedStyle(bar).position;
    if ((position !== "fixed" && position !== "sticky") || bar.contains(focused)) continue;
    if (bar.closest("[hidden]") || getComputedStyle(bar).pointerEvents === "none") continue;
    const b = bar.getBoundingClientRect();
    const width = Math.min(r.right, b.right) - Math.max(r.left, b.left);
    const height = Math.min(r.bottom, b.bottom) - Math.max(r.top, b.top);
    if (width > 1 && height > 1)
      return `${focused.outerHTML.slice(0, 80)} under ${bar.outerHTML.slice(0, 60)}`;
  }
  return null;
}"""

#: text nodes of two characters or more laid out one character per line
BROKEN_WORDS = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    if (text.length < 2 || !node.parentElement.checkVisibility()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
    if (lines.size >= text.length) broken.push(text);
  }
  return broken;
}"""

#: how many CSS pixels of the viewport's height fixed or sticky bars take
BARS_HEIGHT = """() => {
  let total = 0;
  for (const bar of document.querySelectorAll("body > *, .sticky-action")) {
    const position = getComputedStyle(bar).position;
    if (position !== "fixed" && position !== "sticky") continue;
    if (bar.closest("[hidden]")) continue;
    const b = bar.getBoundingClientRect();
    total += Math.max(0, Math.min(b.bottom, innerHeight) - Math.max(b.top, 0));
  }
  return total;
}"""


FONT_SIZE = "e => parseFloat(getComputedStyle(e).fontSize)"


def axe(page: Any, rules: list[str] | None = None) -> list[str]:
    """axe-core's critical and serious violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    options = {"runOnly": rules} if rules else {}
    found = page.evaluate("(options) => axe.run(document, options)", options)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found["violations"]
        if rules or v["impact"] in ("critical", "serious")
    ]


def tab_walk(page: Any, steps: int = 80) -> list[str]:
    """Press Tab through the screen; every focused element hidden under a bar."""
    page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
    covered = []
    for _ in range(steps):
        page.keyboard.press("Tab")
        if found := page.evaluate(COVERED):
            covered.append(found)
    return covered


def add_households(live: Any, count: int) -> None:
    """`count` more households in cadre_a's 上村, with 老 and 病 flags on one person each."""
    upper = live.county.regions["upper"]
    items: list[tuple[str, str, dict[str, Any]]] = []
    for index in range(count):
        household = uid()
        items.append(
            (
                "household",
                household,
                {
                    "village_id": upper,
                    "code": f"3418231019{index:02d}",
                    "head_name": f"王家{index}",
                    "address": f"{index}组",
                    "phone": None,
                    "category": "监测户",
                    "status": "active",
                    "visit_policy": "weekly",
                    "lat": None,
                    "lon": None,
                    "notes": None,
                },
            )
        )
        items.append(
            (
                "person",
                uid(),
                {
                    "household_id": household,
                    "name": f"王老{index}",
                    "gender": "女",
                    "birth_year": 1940,
                    "relation": "户主",
                    "flags": ["elderly", "sick"],
                    "id_number": None,
                    "phone": None,
                    "notes": None,
                },
            )
        )
    with live.app.app_context():
        create_server_records(items, actor=None)


@pytest.fixture
def phone(live: Any, browser: Any) -> Iterator[Phone]:
    add_households(live, EXTRA_HOUSEHOLDS)
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    yield phone
    assert phone.errors == []
    context.close()


def tour(phone: Phone) -> Iterator[str]:
    """Every screen of the cadre app, each yielded by name once it is shown: the week list, a
    household with a visit (更正/作废), the visit form, 发现问题, a new problem, the problem
    list and one problem, the household's edit form, sync, settings."""
    page = phone.page
    phone.open("#/")
    phone.screen("week")
    yield "week"
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    phone.screen("visit")
    yield "visit"
    phone.answer_no("穿不愁")
    page.get_by_label("穿的方面有什么问题").fill("缺少冬衣")
    page.get_by_role("button", name="保存").click()
    phone.screen("found")
    yield "found"
    page.get_by_role("link", name="登记问题").click()
    phone.screen("form")
    yield "problem-new"
    page.get_by_role("button", name="保存").click()
    phone.screen("found")
    phone.household("户主1").get_by_role("button", name="作废").first.wait_for()
    yield "household"
    page.get_by_role("link", name="修改户信息").click()
    phone.screen("form")
    yield "household-edit"
    phone.open("#/problems")
    phone.screen("problems").locator(".row").first.click()
    phone.page.locator("main > .screen").get_by_role("link", name="户主1").wait_for()
    yield "problem"
    phone.open("#/problems")
    phone.screen("problems").locator(".row").first.wait_for()
    yield "problems"
    phone.open("#/sync")
    phone.screen("sync")
    yield "sync"
    phone.open("#/settings")
    phone.screen("settings")
    yield "settings"


def test_axe_finds_no_serious_violation_on_any_screen_of_the_cadre_app(phone):
    found = {name: axe(phone.page) for name in tour(phone)}
    assert {name: v for name, v in found.items() if v} == {}
    assert len(found) == 10


def test_no_element_tabbed_to_hides_under_the_header_tab_bar_or_save_bar(phone):
    covered = {name: tab_walk(phone.page) for name in tour(phone)}
    assert {name: c for name, c in covered.items() if c} == {}


def test_every_household_row_of_the_week_list_has_an_accessible_name(phone):
    """Chromium's own accessibility tree, what TalkBack reads: every row a named link."""
    phone.screen("week").locator(".row").first.wait_for()
    cdp = phone.page.context.new_cdp_session(phone.page)
    tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    links = [
        node.get("name", {}).get("value", "")
        for node in tree
        if node.get("role", {}).get("value") == "link" and not node.get("ignored")
    ]
    rows = [name for name in links if re.match(r"^(户主|王家)\d", name)]
    assert len(rows) == 3 + EXTRA_HOUSEHOLDS, links


def test_a_missing_required_answer_is_named_marked_and_focused(phone):
    page = phone.page
    phone.household("户主2").get_by_role("link", name="记录走访").click()
    phone.screen("visit")
    phone.answer_no("穿不愁")
    page.get_by_role("button", name="保存").click()
    answer = page.get_by_label("穿的方面有什么问题")
    assert answer.get_attribute("aria-invalid") == "true"
    message = page.locator(f"#{answer.get_attribute('aria-describedby')}")
    assert message.inner_text() == "穿的方面有什么问题：必填"
    assert answer.evaluate("input => input === document.activeElement")
    answer.fill("缺少冬衣")
    assert answer.get_attribute("aria-invalid") is None


def test_at_200_percent_zoom_the_visit_form_and_week_list_fit_a_180_px_screen(
    live, browser, screenshot
):
    add_households(live, 3)
    context = browser.new_context(**ZOOMED)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    page = phone.page
    for screen in ("week", "visit"):
        if screen == "visit":
            phone.household("户主1").get_by_role("link", name="记录走访").click()
        phone.screen(screen)
        page.evaluate("window.scrollTo(0, 400)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 180, screen
        assert page.evaluate(BROKEN_WORDS) == [], screen
        assert page.evaluate(BARS_HEIGHT) <= 370 / 3, screen
        screenshot(page, f"{screen}-zoom-200")
    for question in ("穿不愁", "基本医疗有保障"):
        field = page.locator(".field", has_text=question)
        legend, no = field.locator("legend").bounding_box(), field.get_by_text("否", exact=True)
        assert no.bounding_box()["y"] >= legend["y"] + legend["height"] - 1  # stacked
        assert no.bounding_box()["x"] + no.bounding_box()["width"] <= 180
    assert phone.errors == []
    context.close()


def test_with_reduced_motion_a_count_tile_jumps_to_its_group_without_smooth_scrolling(
    live, browser
):
    add_households(live, EXTRA_HOUSEHOLDS)
    context = browser.new_context(**PHONE, reduced_motion="reduce")
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.record_visit("户主1")  # 已走访 now holds a row, below 42 overdue ones
    phone.screen("week").locator("a.count.done").click()
    at_once = phone.page.evaluate("window.scrollY")
    phone.page.wait_for_timeout(600)
    assert at_once == phone.page.evaluate("window.scrollY") > 2000  # there at once, not on its way
    assert phone.errors == []
    context.close()


def test_the_high_contrast_setting_gives_large_text_and_aaa_contrast_and_is_remembered(
    phone, screenshot
):
    page = phone.page
    assert phone.screen("week").locator(".flag").first.evaluate(FONT_SIZE) >= 14  # even without
    phone.open("#/settings")
    toggle = phone.screen("settings").get_by_role("button", name="高对比度大字")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    screenshot(page, "settings-contrast")
    page.reload()
    phone.open("#/")
    phone.screen("week").locator(".row").first.wait_for()
    screenshot(page, "week-contrast")
    assert page.evaluate("getComputedStyle(document.body).fontSize") == "18px"
    smallest = page.evaluate(
        """() => Math.min(...[...document.querySelectorAll("main *")]
             .filter((e) => e.checkVisibility() && [...e.childNodes].some(
               (n) => n.nodeType === 3 && n.textContent.trim()))
             .map((e) => parseFloat(getComputedStyle(e).fontSize)))"""
    )
    assert smallest >= 14
    assert page.locator(".flag").first.evaluate(FONT_SIZE) >= 14  # 老, 弱, 病, 孤
    below_7 = {name: axe(page, ["color-contrast-enhanced"]) for name in tour(phone)}
    assert {name: v for name, v in below_7.items() if v} == {}


def test_a_route_change_moves_focus_to_the_new_screens_heading(phone):
    page = phone.page
    phone.tap(phone.screen("week").locator(".row", has_text="户主1"))
    phone.screen("household")
    assert page.evaluate("document.activeElement.id") == "title"
    assert page.evaluate("document.activeElement.textContent") == "户主1"


def test_the_sign_out_dialog_is_named_by_its_heading(phone):
    phone.open("#/settings")
    phone.screen("settings").get_by_role("button", name="退出登录").click()
    dialog = phone.page.get_by_role("dialog", name="退出登录")
    dialog.wait_for()
    dialog.get_by_role("button", name="取消").click()


def test_the_household_link_on_a_problem_is_a_48_px_tap_target(phone):
    for name in tour(phone):
        if name == "problem":
            link = phone.page.locator("main > .screen").get_by_role("link", name="户主1")
            # the screen renders its detail after its heading, and may render it again: wait
            # until the link is laid out, then measure it
            link.wait_for(state="visible")
            phone.page.wait_for_function(
                """() => [...document.querySelectorAll("main > .screen a")]
                    .some((a) => a.textContent.includes("户主1") && a.offsetHeight > 0)"""
            )
            heights = phone.page.eval_on_selector_all(
                "main > .screen a",
                "links => links.filter((a) => a.textContent.includes('户主1') && a.offsetHeight)"
                ".map((a) => a.getBoundingClientRect().height)",
            )
            assert heights and min(heights) >= 48, heights
            return


def test_axe_finds_no_serious_violation_on_the_admin_pages_signed_in(live, browser):
    errors: list[str] = []
    context, page = open_page(live, browser, "/admin", errors)
    sign_in(page, "admin")
    page.wait_for_selector("body[data-loaded]:not(.opening) #trend-canvas[data-weeks]")
    assert axe(page) == []
    assert axe(page, ["empty-table-header"]) == []
    page.goto(f"{live.url}/admin/manage")
    page.wait_for_selector("body[data-loaded]:not(.opening) #policy select")
    assert axe(page) == []
    assert axe(page, ["empty-table-header"]) == []
    assert errors == []
    context.close()


def test_the_trend_chart_has_a_table_of_its_12_weeks_in_the_pages_language(live, browser):
    errors: list[str] = []
    context, page = open_page(live, browser, "/admin", errors)
    sign_in(page, "sup_east")
    page.wait_for_selector("body[data-loaded]:not(.opening) #trend-canvas[data-weeks]")
    assert page.get_by_role("img", name="近 12 周覆盖率").count() == 1
    table = page.get_by_role("table", name="近 12 周覆盖率")
    assert table.locator("tbody tr").count() == 12
    assert errors == []
    context.close()


#: the layout shifts of the page's life, summed as CLS counts them (no input excluded)
WATCH_SHIFTS = """
window.__shifts = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__shifts += entry.value;
}).observe({ type: "layout-shift", buffered: true });
"""


@pytest.mark.parametrize("path", ["/admin", "/admin/manage"])
def test_the_admin_pages_do_not_shift_while_their_sections_load(live, browser, path):
    seed(live.county)  # a conflict, a problem, visits: every section has rows to fill in
    context = browser.new_context(**LAPTOP)
    context.add_init_script(WATCH_SHIFTS)
    page = context.new_page()
    cdp = context.new_cdp_session(page)  # answers arrive one by one, as over a real network
    cdp.send("Network.enable")
    latency = {"offline": False, "latency": 150, "downloadThroughput": -1, "uploadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", latency)
    page.goto(f"{live.url}{path}")
    sign_in(page, "admin")
    page.wait_for_selector("#main:not([hidden])")
    page.reload()  # signed in: the page opens straight onto its sections, as every morning
    page.wait_for_selector("#main:not([hidden])")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__shifts") < 0.1
    context.close()
