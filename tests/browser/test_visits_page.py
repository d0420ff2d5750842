"""The visits behind a village (issue 14 item 5), in headless Chromium: from the dashboard,
click a village of the coverage table, read its visits of the week, open one and read its
answers under their Chinese labels — under the strict CSP, with no console error."""

from __future__ import annotations

import pytest

from server.admin.forms_service import publish_next_version
from tests.browser.test_dashboard import open_dashboard, this_week_moment
from tests.county import PASSWORD
from tests.test_visit_list import CHECK_FORM

pytestmark = pytest.mark.browser


def test_a_supervisor_opens_a_villages_visits_and_reads_one(live, browser, screenshot):
    with live.app.app_context():
        publish_next_version(CHECK_FORM, actor=None)
    a, h = live.county.device("cadre_a"), live.county.households
    visit = a.visit(
        h["h1"], this_week_moment(), form_id="household_check", form_version=1,
        answers={"water": "no", "remark": "水管冻裂"},
    )  # fmt: skip
    assert a.push([visit]).get_json()["results"][0]["status"] == "applied"
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors)
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")

    page.click("#children >> text=上村")
    page.wait_for_url("**/admin/visits?*")
    page.wait_for_selector("body[data-loaded]", state="attached")
    rows = page.locator("#visits tbody tr")
    assert rows.count() == 1
    assert "户主1" in rows.first.text_content() and "甲干部" in rows.first.text_content()
    assert "上村" in page.text_content("#list-title")
    screenshot(page, "dashboard-visits")

    rows.first.locator("a").first.click()
    page.wait_for_url("**/admin/visits?visit=*")
    page.wait_for_selector("#visit:not([hidden])")
    page.wait_for_selector("#visit-answers dt")
    answers = page.text_content("#visit-answers")
    assert "饮水是否安全" in answers and "不安全" in answers and "水管冻裂" in answers
    screenshot(page, "dashboard-visit")

    page.click("#visit-facts a")  # the household: its visits over time
    page.wait_for_selector("#household-visits li a")
    assert page.text_content("#household-title") == "户主1"
    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()
