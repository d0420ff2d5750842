"""The issue 15 measure, whole: the monthly monitoring of a household as a county writes it in
Excel — one entry per household member with their income, the per-capita income calculated
and compared with the poverty line, township → village, the home's location and a photo of the
house — filled offline on a 360 px phone in headless Chromium, kept across a reload, synced
when back in signal; then the server has validated it (recomputing the calculation), holds the
photo, exports the visit and its members, and the weekly bulletin counts the household."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from server.admin.forms_service import answer_checker
from server.jobs import run_now
from server.reports import bulletins
from server.service import create_server_records
from server.storage.db import db
from server.storage.models import Blob, Snapshot, Visit
from tests.browser.conftest import PHONE
from tests.browser.test_photo_visit import CAMERA_JPEG
from tests.browser.test_pwa import Phone
from tests.browser.xlsforms import publish, submissions
from tests.county import uid

pytestmark = pytest.mark.browser

#: the county's monitoring line, per person and month (yuan)
POVERTY_LINE = 600
SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "required", "relevant",
     "constraint", "choice_filter", "calculation", "repeat_seed"],
    ["select_one town", "town", "乡镇", "Township", "yes"],
    ["select_one village", "village", "村", "Village", "yes", None, None, "township = ${town}"],
    ["begin_repeat", "members", "家庭成员", "Household members", None, None, None, None, None,
     "people"],
    ["decimal", "income", "月收入（元）", "Monthly income (yuan)", "yes", None, ". >= 0"],
    ["select_one yes_no", "works", "是否务工", "In work", "yes"],
    ["calculate", "yearly", "年收入（元）", "Yearly income (yuan)", None, None, None, None,
     "${income} * 12"],
    ["end_repeat"],
    ["calculate", "per_capita", "人均月收入", "Income per person", None, None, None, None,
     "round(sum(${income}) div count(${members}), 2)"],
    ["text", "below_line", "低于监测线的原因", "Why below the line", "yes",
     f"${{per_capita}} < {POVERTY_LINE}"],
    ["geopoint", "home", "住房位置", "Location of the home", "yes"],
    ["image", "house", "住房照片", "Photo of the house", "yes"],
]  # fmt: skip
CHOICES = [
    ["list_name", "name", "label::Chinese (zh)", "label::English (en)", "township"],
    ["town", "east", "东乡", "East"],
    ["town", "west", "西乡", "West"],
    ["village", "shang", "上村", "Upper", "east"],
    ["village", "xia", "下村", "Lower", "west"],
    ["yes_no", "yes", "是", "Yes"],
    ["yes_no", "no", "否", "No"],
]  # fmt: skip
#: what each member of household 户主1 earns a month, and whether they work
MEMBERS = {"汪德明": ("0", "否"), "汪小红": ("900", "是")}


def add_granddaughter(live) -> str:
    """户主1's household has 汪德明; a second person makes the repeat a real list."""
    person = uid()
    data = {
        "household_id": live.county.households["h1"],
        "name": "汪小红",
        "gender": "女",
        "birth_year": 2001,
        "relation": "孙女",
        "flags": [],
        "id_number": None,
        "phone": None,
        "notes": None,
    }
    with live.app.app_context():
        create_server_records([("person", person, data)], actor=None)
    return person


def fill_survey(phone: Phone, camera: bytes) -> None:
    """household 户主1 → 记录走访: place, each member by name, the reason, location, photo."""
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    visit = phone.screen("visit")
    visit.get_by_text("东乡", exact=True).click()
    assert not visit.get_by_text("下村", exact=True).is_visible()
    visit.get_by_text("上村", exact=True).click()
    per_capita = visit.locator(".field", has_text="人均月收入").locator("output")
    reason = visit.get_by_label("低于监测线的原因")
    assert visit.locator(".repeat .entry").count() == len(MEMBERS)  # one per person, by name
    earner = visit.locator(".entry", has_text="汪小红")
    earner.get_by_label("月收入（元）").fill("1500")
    assert per_capita.inner_text() == "750" and not reason.is_visible()  # above the line
    for name, (income, works) in MEMBERS.items():
        entry = visit.locator(".entry", has_text=name)
        entry.get_by_label("月收入（元）").fill(income)
        entry.get_by_text(works, exact=True).click()
    assert per_capita.inner_text() == "450" and reason.is_visible()  # under the line: why?
    yearly = visit.locator(".entry", has_text="汪小红").locator(".field", has_text="年收入")
    assert yearly.locator("output").inner_text() == "10800"  # each member's own calculation
    reason.fill("老人无收入，孙女务工收入低")
    visit.get_by_role("button", name="取当前位置").click()
    visit.locator(".location-field", has_text="已定位").wait_for()
    photo = visit.locator(".photo-field")
    photo.locator("input[type=file]").set_input_files(
        {"name": "IMG_0002.jpg", "mimeType": "image/jpeg", "buffer": camera}
    )
    photo.locator("img.thumb").wait_for()
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("week")


def test_an_offline_household_survey_with_members_a_calculation_and_a_photo_reaches_the_reports(
    live, browser
):
    settings = [["form_id", "form_title"], ["weekly_visit", "每周走访与收入监测"]]
    imported = publish(live, {"survey": SURVEY, "choices": CHOICES, "settings": settings})
    assert imported.status == "published"
    granddaughter = add_granddaughter(live)
    context = browser.new_context(
        **PHONE, permissions=["geolocation"], geolocation={"latitude": 26.58, "longitude": 106.71}
    )
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    camera = base64.b64decode(phone.page.evaluate(CAMERA_JPEG))

    context.set_offline(True)
    fill_survey(phone, camera)
    phone.page.reload()  # offline: the shell comes from the cache, the visit from IndexedDB
    assert phone.waiting() == "等待上传：1 条走访，0 条更新"
    assert phone.go_online(context).startswith("已上传 1 条")
    phone.until("!document.querySelector('main .photos-waiting')")

    with live.app.app_context():
        (stored,) = [
            v
            for v in db.session.scalars(select(Visit))
            if json.loads(v.data).get("form_version") == imported.form.version
        ]
        data = json.loads(stored.data)
        answers = data["answers"]
        by_person = {entry["person"]: entry for entry in answers["members"]}
        assert by_person[granddaughter] == {
            "person": granddaughter,
            "income": 900,
            "works": True,
            "yearly": 10800,
        }
        (elder,) = set(by_person) - {granddaughter}
        assert by_person[elder] == {"person": elder, "income": 0, "works": False, "yearly": 0}
        assert (answers["town"], answers["village"]) == ("east", "shang")
        assert answers["per_capita"] == 450 and answers["below_line"]
        assert (answers["home"]["lat"], answers["home"]["lon"]) == (26.58, 106.71)
        version = imported.form.version
        assert answer_checker()("weekly_visit", version, answers, data["visited_at"]) == {}
        wrong = {**answers, "per_capita": 500}  # the server recomputes, and would refuse this
        assert answer_checker()("weekly_visit", version, wrong, data["visited_at"]) == {
            "per_capita": ["calculation_mismatch"]
        }
        index = answers["members"].index(by_person[granddaughter])
        members = [
            dict(e, yearly=900) if e["person"] == granddaughter else e for e in answers["members"]
        ]
        assert answer_checker()(
            "weekly_visit", version, {**answers, "members": members}, data["visited_at"]
        ) == {f"members[{index}].yearly": ["calculation_mismatch"]}
        blob = db.session.scalars(select(Blob).where(Blob.sha256 == answers["house"])).one()
        assert hashlib.sha256(bytes(blob.content)).hexdigest() == answers["house"]

    zone = ZoneInfo(live.app.config["TIMEZONE"])
    visited = datetime.fromisoformat(data["visited_at"]).astimezone(zone)
    period = visited.strftime("%G-W%V")
    sheets = submissions(live, period)
    (row,) = [r for r in sheets["走访记录"] if r["走访编号"] == stored.id]
    assert float(row["人均月收入"]) == 450 and row["住房照片"] == answers["house"]
    members = [r for r in sheets["家庭成员"] if r["走访编号"] == stored.id]
    assert sorted(
        (r["人员"], float(r["月收入（元）"]), float(r["年收入（元）"])) for r in members
    ) == [
        ("汪小红", 900, 10800),
        ("汪德明", 0, 0),
    ]

    monday = (visited + timedelta(days=8 - visited.isoweekday())).replace(hour=8, minute=0)
    live.app.config["CLOCK"] = lambda: monday.astimezone(UTC)  # the bulletin after that week
    with live.app.app_context():
        assert run_now("weekly_bulletin").status == "ok"
        kept = {
            s.region_id: json.loads(s.data)
            for s in db.session.scalars(select(Snapshot).where(Snapshot.kind == "bulletin"))
        }
        assert (bulletins.folder() / f"{period}-code-east.xlsx").exists()
    east = kept[live.county.regions["east"]]
    assert (east["period"], east["summary"]["visited"]) == (period, 1)
    (upper,) = [c for c in east["children"] if c["region_id"] == live.county.regions["upper"]]
    assert upper["visited"] == 1
    assert phone.errors == []
