"""Calculations and expression checks of an imported XLSForm on the phone (issue 15): the
calculated value shows read-only as answers change, a regex() constraint speaks Chinese next
to its question as soon as the answer is wrong, and the visit's calculation is stored and
recomputed equal on the server."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from server.admin.forms_service import answer_checker
from server.storage.db import db
from server.storage.models import Visit
from tests.browser.conftest import PHONE
from tests.browser.test_pwa import Phone
from tests.browser.xlsforms import publish

pytestmark = pytest.mark.browser

SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "calculation", "constraint"],
    ["integer", "income", "家庭年收入", "Yearly income"],
    ["integer", "members", "家庭人口", "People"],
    ["calculate", "per_capita", "人均收入", "Per capita", "round(${income} div ${members}, 2)"],
    ["text", "mobile", "手机号", "Mobile", None, "regex(., '^1[3-9][0-9]{9}$')"],
    ["date", "checked", "核实日期", "Checked on", None, ". <= today()"],
]  # fmt: skip


def test_a_calculation_shows_as_answers_change_and_the_server_recomputes_it(live, browser):
    imported = publish(live, {"survey": SURVEY})
    assert imported.status == "published"
    phone = Phone(browser.new_context(**PHONE).new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    visit = phone.screen("visit")
    calculated = visit.locator(".field", has_text="人均收入").locator("output")
    assert calculated.inner_text() == "—"
    phone.page.get_by_label("家庭年收入").fill("20000")
    phone.page.get_by_label("家庭人口").fill("3")
    assert calculated.inner_text() == "6666.67"
    mobile = phone.page.get_by_label("手机号")
    mobile_row = visit.locator(".field", has_text="手机号")
    mobile.fill("12345")
    mobile_row.locator(".error", has_text="不符合本题的要求").wait_for()  # at once, in Chinese
    mobile.fill("13800138000")
    assert not mobile_row.locator(".error").is_visible()
    phone.page.get_by_label("核实日期").fill("2020-01-01")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("week")
    phone.sync()
    with live.app.app_context():
        stored = [json.loads(v.data) for v in db.session.scalars(select(Visit))]
        (visit_data,) = [v for v in stored if v.get("form_version") == imported.form.version]
        answers = visit_data["answers"]
        assert answers["per_capita"] == 6666.67
        version = imported.form.version
        assert answer_checker()("weekly_visit", version, answers, visit_data["visited_at"]) == {}
        wrong = {**answers, "per_capita": 6000}
        assert answer_checker()("weekly_visit", version, wrong, visit_data["visited_at"]) == {
            "per_capita": ["calculation_mismatch"]
        }
    assert phone.errors == []
