"""Repeats on the phone (issue 15): a repeat asked once per person of the household, reading
as the list of its people, and a repeat counted by an earlier answer; a rank and a barcode
question; filled offline-first on a 360 px phone, and the visit valid on the server."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from forms import validate_answers
from server.storage.db import db
from server.storage.models import Visit
from tests.browser.conftest import PHONE
from tests.browser.test_pwa import Phone
from tests.browser.xlsforms import publish

pytestmark = pytest.mark.browser

SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "required", "relevant",
     "repeat_count", "repeat_seed", "choice_filter", "default"],
    ["begin_repeat", "members", "家庭成员", "Members", None, None, None, "people"],
    ["decimal", "income", "月收入", "Monthly income", "yes"],
    ["select_one yes_no", "works", "是否务工", "Works away", None, "${income} > 0"],
    ["begin_repeat", "jobs", "工作", "Jobs", None, "${works} = 'no'"],
    ["text", "job", "工种", "Kind of work", "yes"],
    ["end_repeat"],
    ["end_repeat"],
    ["integer", "kids", "在校学生数", "Pupils"],
    ["begin_repeat", "pupils", "在校学生", "Pupils", None, None, "${kids}"],
    ["text", "school", "学校", "School", "yes"],
    ["text", "county", "所在县", "County", None, None, None, None, None, "本县"],
    ["select_one stage", "stage", "学段", "Stage"],
    ["select_one grade", "grade", "年级", "Grade", None, None, None, None, "stage = ${stage}"],
    ["end_repeat"],
    ["rank needs", "needs", "最需要的帮助", "Most needed help"],
    ["barcode", "card", "卡号", "Card number"],
]  # fmt: skip
CHOICES = [
    ["list_name", "name", "label::Chinese (zh)", "label::English (en)", "stage"],
    ["stage", "primary", "小学", "Primary"],
    ["stage", "middle", "中学", "Middle"],
    ["grade", "g1", "一年级", "Grade 1", "primary"],
    ["grade", "g7", "七年级", "Grade 7", "middle"],
    ["yes_no", "yes", "是", "Yes"],
    ["yes_no", "no", "否", "No"],
    ["needs", "water", "饮水", "Water"],
    ["needs", "road", "道路", "Road"],
]  # fmt: skip


def test_a_repeat_per_household_member_and_a_counted_repeat_reach_the_server_valid(
    live, browser, screenshot
):
    imported = publish(live, {"survey": SURVEY, "choices": CHOICES})
    assert imported.status == "published"
    phone = Phone(browser.new_context(**PHONE).new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    visit = phone.screen("visit")
    member = visit.locator(".entry", has_text="汪德明")  # one entry per person, by name
    phone.page.get_by_role("button", name="保存").click()
    member.locator(".error", has_text="必填").wait_for()  # the person's own question
    member.get_by_label("月收入").fill("1200")
    member.get_by_text("否", exact=True).click()
    member.get_by_role("button", name="添加一条").click()  # a repeat inside the person's entry
    member.get_by_label("工种").fill("保洁")
    visit.get_by_label("在校学生数").fill("2")
    pupils = visit.locator(".repeat", has_text="在校学生").locator(".entry")
    assert pupils.count() == 2  # as many entries as the answer asks for
    pupils.nth(0).get_by_label("学校").fill("中心小学")
    pupils.nth(0).get_by_text("小学", exact=True).click()  # a cascading list inside an entry
    assert not pupils.nth(0).get_by_text("七年级").is_visible()
    pupils.nth(0).get_by_text("一年级", exact=True).click()
    pupils.nth(1).get_by_label("学校").fill("县一中")
    visit.get_by_role("button", name="下移 饮水").click()
    visit.get_by_label("卡号").fill("6901234567892")
    screenshot(phone.page, "visit-repeat")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("week")
    phone.sync()
    with live.app.app_context():
        stored = [json.loads(v.data) for v in db.session.scalars(select(Visit))]
    (answers,) = [v["answers"] for v in stored if v.get("form_version") == imported.form.version]
    (person,) = [entry["person"] for entry in answers["members"]]
    jobs = [{"job": "保洁"}]
    assert answers["members"] == [{"person": person, "income": 1200, "works": False, "jobs": jobs}]
    first_pupil = {"school": "中心小学", "county": "本县", "stage": "primary", "grade": "g1"}
    assert answers["pupils"] == [first_pupil, {"school": "县一中", "county": "本县"}]
    assert answers["kids"] == 2 and answers["needs"] == ["road", "water"]
    assert answers["card"] == "6901234567892"
    assert validate_answers(imported.form, answers, [person]) == {}
    assert phone.errors == []


def test_a_long_form_pages_by_group_and_an_invalid_question_brings_its_page_up(
    live, browser, screenshot
):
    survey: list[list[object]] = [["type", "name", "label", "required"]]
    for group in range(1, 4):
        survey.append(["begin_group", f"part{group}", f"第{group}部分"])
        survey += [["text", f"q{group}_{n}", f"问题{group}-{n}"] for n in range(1, 10)]
        survey.append(["end_group"])
    survey[-2] = [*survey[-2], "yes"]  # the last question of the last page must be answered
    assert publish(live, {"survey": survey}).status == "published"
    phone = Phone(browser.new_context(**PHONE).new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    visit = phone.screen("visit")
    assert visit.get_by_label("问题1-1").is_visible()
    assert not visit.get_by_label("问题2-1").is_visible()
    visit.get_by_role("button", name="下一页").click()
    assert visit.get_by_label("问题2-1").is_visible()
    assert not visit.get_by_label("问题1-1").is_visible()
    visit.get_by_role("button", name="上一页").click()
    phone.page.get_by_role("button", name="保存").click()
    assert visit.get_by_label("问题3-9").is_visible()  # its page came up, with the message
    visit.locator(".error", has_text="必填").wait_for()
    screenshot(phone.page, "visit-paged")
    assert phone.errors == []
