"""The supervisor's week in headless Chromium (issue 14 items 4, 8, 10): sign in at / and land
on the dashboard; pick last week and the tiles, the address and the kept bulletins follow; the
overdue tile counts the overdue list."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from server import jobs
from server.reports.periods import week_label
from server.service import create_server_records
from tests.browser.test_dashboard import LAPTOP, SHANGHAI, WATCH_CSP, this_week_moment
from tests.county import PASSWORD, uid

pytestmark = pytest.mark.browser


def loaded(page, times: int) -> None:
    """Wait for the dashboard's ``times``-th load to finish."""
    page.wait_for_selector(f"body[data-loaded='{times}']:not(.loading)", state="attached")


def monthly_household(live) -> None:
    """A monthly household in 上村, never visited: overdue today, outside a week's coverage."""
    county = live.county
    data = {
        "village_id": county.regions["upper"],
        "code": "341823101001009",
        "head_name": "月访户",
        "address": "9组",
        "phone": None,
        "category": "一般户",
        "status": "active",
        "visit_policy": "monthly",
        "lat": None,
        "lon": None,
        "notes": None,
    }
    with live.app.app_context():
        create_server_records([("household", uid(), data)], actor=None)


def test_a_supervisor_picks_last_week_and_the_tiles_address_and_bulletins_follow(live, browser):
    county = live.county
    a = county.device("cadre_a")
    h = county.households
    problem = {"household_id": h["h1"], "category": "water", "description": "井水浑浊"}
    visits = [a.visit(h["h1"], this_week_moment()), a.visit(h["h2"], this_week_moment())]
    pushed = a.push([*visits, a.op("create", "problem", uid(), problem)])
    assert pushed.status_code == 200
    monthly_household(live)
    now = datetime.now(SHANGHAI)
    this_week = week_label(now.date())
    last_week = week_label(now.date() - timedelta(days=7))
    monday = (now - timedelta(days=now.weekday())).replace(hour=6, minute=0, tzinfo=None)
    with live.app.app_context():
        jobs.weekly_bulletin(monday)  # keeps last week's bulletin of 东河镇, as on Monday

    context = browser.new_context(**LAPTOP, accept_downloads=True)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live.url}/admin?period={this_week}")
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    loaded(page, 1)
    assert page.locator("#period-pick").input_value() == this_week
    assert page.text_content("#t-visited") == "2"
    assert page.text_content("#t-coverage") == "50.0%"

    # the overdue tile is the overdue list: h3, h4 and the monthly household
    assert page.locator("#overdue tbody tr").count() == 3
    assert page.text_content("#t-overdue") == page.text_content("#overdue-count") == "3"

    # last week: nothing visited; the address keeps region and period
    page.select_option("#period-pick", last_week)
    loaded(page, 2)
    assert page.text_content("#t-due") == "4"
    assert page.text_content("#t-visited") == "0"
    assert page.text_content("#t-coverage") == "0.0%"
    assert last_week in page.text_content("#period")
    params = parse_qs(urlparse(page.url).query)
    assert params == {"region": [county.regions["east"]], "period": [last_week]}

    # the page opened from that address shows last week again
    page.reload()
    loaded(page, 1)
    assert page.locator("#period-pick").input_value() == last_week
    assert page.text_content("#t-visited") == "0"

    # last week's bulletin, as the Monday job kept it, downloads from the page
    kept = page.locator(f"#bulletins li[data-period='{last_week}']")
    assert kept.count() == 1
    with page.expect_download() as download:
        kept.locator("a").click()
    assert download.value.suggested_filename == f"{last_week}-code-east.xlsx"

    # a problem's new status is asked for, not preselected
    status = page.locator("#problems li.problem select[name=status]")
    assert status.input_value() == ""
    assert status.locator("option:checked").text_content() == "选择新状态"
    page.locator("#problems li.problem button[type=submit]").click()  # nothing chosen: not sent
    assert page.locator("#problems li.problem .pill.open").count() == 1

    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()


@pytest.mark.parametrize(
    ("moment", "opening"),
    [("2026-11-30T09:00:00+08:00", "2026-W48"), ("2026-12-01T09:00:00+08:00", "2026-W49")],
    ids=["monday-opens-last-week", "tuesday-opens-this-week"],
)
def test_the_dashboard_opens_on_this_week_but_on_a_monday_on_last_week(
    live, browser, moment, opening
):
    fixed = datetime.fromisoformat(moment)
    live.app.config["CLOCK"] = lambda: fixed  # the server's week …
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    page.clock.set_fixed_time(fixed)  # … and the browser's day
    page.goto(f"{live.url}/admin")
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    loaded(page, 1)
    assert page.locator("#period-pick").input_value() == opening
    assert parse_qs(urlparse(page.url).query)["period"] == [opening]
    context.close()


def test_an_address_naming_a_region_outside_the_assignment_opens_the_users_own(live, browser):
    county = live.county
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    page.goto(f"{live.url}/admin?region={county.regions['west']}&period=2026-W48")
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    loaded(page, 2)  # refused, then 东河镇
    assert page.locator("#region option:checked").text_content().strip() == "东河镇"
    assert parse_qs(urlparse(page.url).query)["region"] == [county.regions["east"]]
    assert page.locator("#period-pick").input_value() == "2026-W48"
    context.close()


def test_a_township_supervisor_signing_in_at_the_app_lands_on_the_dashboard(live, browser):
    context = browser.new_context(**LAPTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live.url}/")
    page.get_by_label("用户名").fill("sup_east")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live.url}/admin**")
    loaded(page, 1)
    assert page.locator("#main").is_visible() and page.locator("#signin").is_hidden()
    assert page.text_content("#who") == "东督导"
    # the way back to the app, for a supervisor who also visits households
    assert page.get_attribute("#app-link", "href") == "/?app=1"
    assert page.locator("#app-link").is_visible()
    assert errors == []
    context.close()
