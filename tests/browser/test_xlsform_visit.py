"""An imported XLSForm on the phone (issue 15): its note, whole number, time, range, location
and hidden question filled offline-first on a 360 px phone, and the visit valid on the server."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from server.storage.db import db
from server.storage.models import Visit
from tests.browser.conftest import PHONE
from tests.browser.test_pwa import Phone
from tests.browser.xlsforms import publish

pytestmark = pytest.mark.browser

SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "required", "default",
     "constraint", "constraint_message::Chinese (zh)", "parameters", "choice_filter"],
    ["note", "intro", "请如实填写本月情况", "Fill in this month's situation"],
    ["integer", "HH_Size", "家庭人口", "People in the household", "yes", None, ". <= 20",
     "人口应在 20 以内"],
    ["time", "arrived", "到达时间", "Arrived at"],
    ["range", "score", "满意度", "Satisfaction", None, None, None, None, "start=0 end=10 step=2"],
    ["geopoint", "home", "住房位置", "Location of the home"],
    ["hidden", "source", None, None, None, "xlsform"],
    ["select_one town", "town", "乡镇", "Township"],
    ["select_one village", "village", "村", "Village", None, None, None, None, None,
     "township = ${town}"],
]  # fmt: skip
CHOICES = [
    ["list_name", "name", "label::Chinese (zh)", "label::English (en)", "township"],
    ["town", "east", "东乡", "East"],
    ["town", "west", "西乡", "West"],
    ["village", "shang", "上村", "Upper", "east"],
    ["village", "xia", "下村", "Lower", "west"],
]  # fmt: skip


def test_an_imported_xlsform_is_filled_on_the_phone_and_valid_on_the_server(
    live, browser, screenshot
):
    imported = publish(live, {"survey": SURVEY, "choices": CHOICES})
    assert imported.status == "published"
    context = browser.new_context(
        **PHONE, permissions=["geolocation"], geolocation={"latitude": 26.58, "longitude": 106.71}
    )
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    visit = phone.screen("visit")
    assert "请如实填写本月情况" in visit.locator(".note").inner_text()
    size = phone.page.get_by_label("家庭人口")
    size.fill("25")
    phone.page.get_by_role("button", name="保存").click()
    visit.locator(".error", has_text="人口应在 20 以内").wait_for()  # the form's own words
    size.fill("4")
    phone.page.get_by_label("到达时间").fill("09:30")
    visit.get_by_role("button", name="取当前位置").click()
    visit.locator(".location-field", has_text="已定位").wait_for()
    village = visit.locator(".field", has_text="上村")
    assert not village.get_by_text("上村").is_visible()  # no township chosen yet
    visit.get_by_text("东乡", exact=True).click()
    assert village.get_by_text("上村").is_visible() and not village.get_by_text("下村").is_visible()
    visit.get_by_text("上村", exact=True).click()
    screenshot(phone.page, "visit-xlsform")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("week")
    phone.sync()
    with live.app.app_context():
        stored = [json.loads(v.data) for v in db.session.scalars(select(Visit))]
    (answers,) = [v["answers"] for v in stored if v.get("form_version") == imported.form.version]
    assert answers["hh_size"] == 4 and answers["arrived"] == "09:30"
    assert answers["source"] == "xlsform" and "intro" not in answers
    assert (answers["town"], answers["village"]) == ("east", "shang")
    assert (answers["home"]["lat"], answers["home"]["lon"]) == (26.58, 106.71)
    assert phone.errors == []
