"""The issue 15 measure, on a 360 px phone in headless Chromium: offline, a cadre fills an
imported form with a cascading select, the phone's location and a photo from the camera; back
online the visit syncs, then its photo; on the server the visit validates, the photo hashes
to the answer and is at most 1280 px, and the submissions export reads the visit."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from server.admin.forms_service import answer_checker
from server.storage.db import db
from server.storage.models import Blob, Visit
from tests.browser.conftest import PHONE
from tests.browser.test_pwa import Phone
from tests.browser.xlsforms import publish, submissions

pytestmark = pytest.mark.browser

SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "required", "choice_filter"],
    ["select_one town", "town", "乡镇", "Township", "yes"],
    ["select_one village", "village", "村", "Village", "yes", "township = ${town}"],
    ["geopoint", "home", "住房位置", "Location of the home", "yes"],
    ["image", "house", "住房照片", "Photo of the house", "yes"],
]  # fmt: skip
CHOICES = [
    ["list_name", "name", "label::Chinese (zh)", "label::English (en)", "township"],
    ["town", "east", "东乡", "East"],
    ["town", "west", "西乡", "West"],
    ["village", "shang", "上村", "Upper", "east"],
    ["village", "xia", "下村", "Lower", "west"],
]  # fmt: skip
#: a 2000 × 1500 camera picture, drawn and encoded by the browser itself
CAMERA_JPEG = """async () => {
  const canvas = new OffscreenCanvas(2000, 1500);
  const g = canvas.getContext("2d");
  g.fillStyle = "#8a6"; g.fillRect(0, 0, 2000, 1500);
  g.fillStyle = "#b32"; g.fillRect(400, 300, 900, 700);
  const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.95 });
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}"""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("no start-of-frame marker")


def api_call(request: Any) -> str:
    """ "PUT blobs", "POST sync/push": a request as the test reads it."""
    path = request.url.split("/api/v1/", 1)[1].split("?")[0]
    return f"{request.method} {'blobs' if path.startswith('blobs/') else path}"


def fill_visit(phone: Phone, camera: bytes) -> None:
    """household 户主1 → 记录走访: township, village, location and a photo, then 保存."""
    phone.household("户主1").get_by_role("link", name="记录走访").click()
    visit = phone.screen("visit")
    visit.get_by_text("东乡", exact=True).click()
    assert not visit.get_by_text("下村", exact=True).is_visible()
    visit.get_by_text("上村", exact=True).click()
    visit.get_by_role("button", name="取当前位置").click()
    visit.locator(".location-field", has_text="已定位").wait_for()
    photo = visit.locator(".photo-field")
    photo.locator("input[type=file]").set_input_files(
        {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": camera}
    )
    photo.locator("img.thumb").wait_for()
    assert "1280×960" in photo.inner_text()
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("week")


def test_an_offline_visit_with_a_photo_arrives_after_its_visit_and_is_exported(live, browser):
    imported = publish(live, {"survey": SURVEY, "choices": CHOICES})
    context = browser.new_context(
        **PHONE, permissions=["geolocation"], geolocation={"latitude": 26.58, "longitude": 106.71}
    )
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    camera = base64.b64decode(phone.page.evaluate(CAMERA_JPEG))

    calls: list[str] = []
    phone.page.on("request", lambda r: "/api/v1/" in r.url and calls.append(api_call(r)))

    context.set_offline(True)
    fill_visit(phone, camera)
    household = phone.household("户主1")
    household.locator(".visit .tag.pending", has_text="照片待上传").wait_for()
    household.locator(".visit img.thumb").wait_for()
    phone.open("#/sync")
    waiting = phone.screen("sync").locator(".photos-waiting")
    assert waiting.inner_text().startswith("照片待上传：1 张")

    assert phone.go_online(context).startswith("已上传 1 条")
    phone.screen("sync")
    assert phone.page.locator("main .photos-waiting").count() == 0
    household = phone.household("户主1")
    household.locator(".visit img.thumb").wait_for()
    phone.until("!document.querySelector('main .visit .tag.pending')")

    with live.app.app_context():
        (stored,) = [
            v
            for v in db.session.scalars(select(Visit))
            if json.loads(v.data).get("form_version") == imported.form.version
        ]
        answers = json.loads(stored.data)["answers"]
        assert (answers["town"], answers["village"]) == ("east", "shang")
        assert (answers["home"]["lat"], answers["home"]["lon"]) == (26.58, 106.71)
        assert answer_checker()("weekly_visit", imported.form.version, answers) == {}
        blob = db.session.scalars(select(Blob).where(Blob.sha256 == answers["house"])).one()
        data = bytes(blob.content)
    assert hashlib.sha256(data).hexdigest() == answers["house"]
    assert max(jpeg_size(data)) == 1280

    period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%G-W%V")
    visits = next(iter(submissions(live, period).values()))
    by_id = {next(iter(row.values())): row for row in visits}
    assert by_id[stored.id]["住房照片"] == answers["house"]
    assert by_id[stored.id]["村"] in ("上村", "shang")
    sent = [call for call in calls if call in ("POST sync/push", "HEAD blobs", "PUT blobs")]
    assert sent == ["POST sync/push", "HEAD blobs", "PUT blobs"]  # the visit, then its photo
    assert phone.errors == []


def test_a_photo_the_server_has_is_not_sent_again(live, browser):
    publish(live, {"survey": SURVEY, "choices": CHOICES})
    context = browser.new_context(
        **PHONE, permissions=["geolocation"], geolocation={"latitude": 26.58, "longitude": 106.71}
    )
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    camera = base64.b64decode(phone.page.evaluate(CAMERA_JPEG))
    blob_calls: list[str] = []
    phone.page.on("request", lambda r: "/api/v1/blobs/" in r.url and blob_calls.append(r.method))
    for _ in range(2):
        fill_visit(phone, camera)
        assert phone.sync().startswith("已上传 1 条")
    assert blob_calls == ["HEAD", "PUT", "HEAD"]
    assert phone.errors == []
