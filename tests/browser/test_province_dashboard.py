"""A province supervisor's dashboard (督导台) in headless Chromium: every county's coverage of
the week on one page, from the counties' weekly snapshots, with the county that has none
shown as not reported rather than as 0 %."""

from __future__ import annotations

from typing import Any

import pytest

from server.admin.accounts import create_user
from server.service import create_server_records
from tests.browser.test_dashboard import open_dashboard
from tests.county import PASSWORD, uid
from tests.test_province import keep, region

pytestmark = pytest.mark.browser


def test_a_province_supervisor_sees_every_countys_coverage_on_one_page(live, browser):
    app = live.county.app
    ids = {key: uid() for key in ("province", "jixi", "she", "yi")}
    items = [
        ("region", ids["province"], region(None, "province", "安徽省", "34")),
        ("region", ids["jixi"], region(ids["province"], "county", "绩溪县", "341824")),
        ("region", ids["she"], region(ids["province"], "county", "歙县", "341021")),
        ("region", ids["yi"], region(ids["province"], "county", "黟县", "341023")),
    ]
    with app.app_context():
        create_server_records(items, actor=None)
        create_user("sup_anhui", PASSWORD, "supervisor", [ids["province"]], [], "省督导")
    keep(app, ids["jixi"], "2026-11-22T22:00:00", due=100, visited=90, overdue=10)
    keep(app, ids["she"], "2026-11-22T22:00:00", due=50, visited=40, overdue=10)
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors, period="2026-W47")
    page.fill("#signin [name=username]", "sup_anhui")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#main:not([hidden])")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")

    assert page.text_content("#t-due") == "150"
    assert page.text_content("#t-visited") == "130"
    assert page.text_content("#t-overdue") == "20"
    assert page.text_content("#t-coverage") == "86.7%"
    rows = page.locator("#children tbody tr")
    cells: dict[str, Any] = {}
    for i in range(rows.count()):
        texts = [c.strip() for c in rows.nth(i).locator("td").all_text_contents()]
        cells[texts[0]] = texts[1:]
    assert cells == {
        "歙县": ["50", "40", "80.0%"],
        "黟县": ["—", "—", "未上报"],
        "绩溪县": ["100", "90", "90.0%"],
    }
    assert "黟县" in page.text_content("#missing")
    assert page.locator("#overdue").is_hidden() and page.locator("#problems").is_hidden()
    assert errors == [] and page.evaluate("window.__violations") == []
    context.close()
