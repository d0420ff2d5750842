"""Names and honest sync status in the PWA (issue 14 items 7 and 8): another cadre's visit
under their name, no success line above a failed sync, a visible 离线 indicator."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE
from tests.browser.test_pwa import Phone
from tests.county import uid

pytestmark = pytest.mark.browser


def test_another_cadres_visit_and_problem_show_their_name(live, browser):
    cadre_b, h1 = live.county.device("cadre_b"), live.county.households["h1"]
    problem = uid()
    data = {"household_id": h1, "category": "water", "description": "水管冻裂"}
    data["assignee_id"] = live.county.users["cadre_b"]
    pushed = cadre_b.push(
        [cadre_b.visit(h1), cadre_b.op("create", "problem", problem, data)]
    ).get_json()
    assert [r["status"] for r in pushed["results"]] == ["applied", "applied"]
    phone = Phone(browser.new_context(**PHONE).new_page(), live.url)
    phone.sign_in("cadre_a")
    visits = phone.household("户主1").locator(".visit")
    assert "乙干部" in visits.first.inner_text()
    assert "其他干部" not in visits.first.inner_text()
    phone.open(f"#/problem/{problem}")
    assert phone.screen("problem").locator(".assignee").inner_text() == "责任人：乙干部"
    assert phone.errors == []


def test_the_sync_screen_shows_no_success_line_after_a_failure(live, browser):
    live.faults.add("sync")
    phone = Phone(browser.new_context(**PHONE).new_page(), live.url)
    phone.open()
    phone.page.get_by_label("用户名").fill("cadre_a")
    phone.page.get_by_label("密码").fill("qingshan-2026")
    phone.page.get_by_role("button", name="登录").click()
    assert phone.next_sync(None) == "failed"
    phone.open("#/sync")
    card = phone.screen("sync").locator(".card").first
    phone.until("document.querySelector('main .sync .result.failed') !== null")
    assert "上次同步： 从未同步" in card.inner_text()
    live.faults.clear()
    result = phone.sync()
    assert result.startswith("已上传 0 条，收到") and "处冲突" not in result  # no "0 处冲突"
    assert "刚刚" in phone.screen("sync").locator(".card").first.inner_text()


def test_the_offline_indicator_appears_while_the_phone_has_no_network(live, browser):
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    indicator = phone.page.locator("#offline")
    assert indicator.is_hidden()
    context.set_offline(True)
    phone.until("!document.getElementById('offline').hidden")
    assert indicator.inner_text() == "离线"
    assert phone.page.get_by_role("status", name="离线：没有网络").is_visible()
    context.set_offline(False)
    phone.until("document.getElementById('offline').hidden")
