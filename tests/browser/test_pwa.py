"""The cadre's PWA in a real Chromium (issue 4): a week offline, two cadres in conflict, an
update that waits for the user, the routine visit in three taps, a revoked phone."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server.reports.coverage import coverage
from server.storage.db import db
from server.storage.models import Device, Problem, Visit
from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser


class Phone:
    """One page of the app as a cadre uses it; counts every tap."""

    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url, self.taps = page, url, 0
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def tap(self, locator: Any) -> None:
        locator.click()
        self.taps += 1

    def open(self, hash_: str = "#/") -> None:
        self.page.goto(f"{self.url}/{hash_}")

    def screen(self, name: str) -> Any:
        """Wait for a screen (its CSS class) to be shown."""
        locator = self.page.locator(f"main > .screen.{name}")
        locator.wait_for()
        return locator

    def until(self, expression: str, timeout: float = 30) -> Any:
        """Poll a JS expression until it is truthy. (wait_for_function evals its predicate
        inside the page, which the app's CSP forbids, as it should.)"""
        deadline = time.monotonic() + timeout
        while not (value := self.page.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.05)
        return value

    def sign_in(self, username: str) -> None:
        self.open()
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill("qingshan-2026")
        before = self.synced_at()
        self.page.get_by_role("button", name="登录").click()
        assert self.next_sync(before) == "ok"
        self.screen("week").locator(".row").first.wait_for()
        self.until("navigator.serviceWorker.controller !== null")

    def synced_at(self) -> Any:
        return self.page.evaluate("document.documentElement.dataset.syncedAt ?? null")

    def next_sync(self, before: Any) -> str:
        """Wait for a sync to end after the one that ended at `before`: "ok" or "failed"."""
        self.until(f"(document.documentElement.dataset.syncedAt ?? null) !== {json.dumps(before)}")
        return str(self.page.evaluate("document.documentElement.dataset.sync"))

    def sync(self) -> str:
        """Tap 同步 → 立即同步 and wait; the result line as the cadre reads it."""
        self.open("#/sync")
        before = self.synced_at()
        self.screen("sync").get_by_role("button", name="立即同步").click()
        self.next_sync(before)
        return self.result()

    def go_online(self, context: Any) -> str:
        """Back in signal on the sync screen: the app syncs by itself; that sync's result."""
        self.open("#/sync")
        before = self.synced_at()
        context.set_offline(False)
        self.next_sync(before)
        return self.result()

    def result(self) -> str:
        """The result line of the last sync, once no sync runs and the screen shows that one."""
        self.until(
            "document.documentElement.dataset.sync !== 'running' && document.querySelector"
            "('main .sync .result')?.dataset.at === document.documentElement.dataset.syncedAt"
        )
        return str(self.screen("sync").locator(".result").inner_text())

    def household(self, head_name: str) -> Any:
        self.open("#/")
        self.tap(self.screen("week").locator(".row", has_text=head_name))
        return self.screen("household")

    def record_visit(self, head_name: str) -> None:
        """The routine visit: household → 记录走访 → 保存."""
        self.household(head_name)
        self.tap(self.page.get_by_role("link", name="记录走访"))
        self.screen("visit")
        self.tap(self.page.get_by_role("button", name="保存"))
        self.screen("week")

    def answer_no(self, question: str) -> None:
        self.page.locator(".field", has_text=question).get_by_text("否", exact=True).click()

    def waiting(self) -> str:
        self.open("#/sync")
        return str(self.screen("sync").locator(".waiting").inner_text())


def count(app: Any, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)))


def test_a_week_offline_across_reloads_and_restarts_syncs_every_record_exactly_once(
    live, launch_persistent, tmp_path
):
    profile = tmp_path / "profile"
    context = launch_persistent(profile)
    phone = Phone(context.pages[0], live.url)
    phone.sign_in("cadre_a")

    context.set_offline(True)
    for index in range(19):
        phone.record_visit(f"户主{index % 3 + 1}")
    phone.household("户主2")  # the 20th visit finds no safe water: log it as a problem
    phone.page.get_by_role("link", name="记录走访").click()
    phone.answer_no("饮水安全有保障")
    phone.page.get_by_label("饮水安全方面有什么问题").fill("水量不足")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("found").get_by_role("link", name="登记问题").click()
    assert "水量不足" in phone.page.get_by_label("问题描述（必填）").input_value()
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("found").get_by_text("已登记").wait_for()
    phone.household("户主3").get_by_role("link", name="登记问题").click()
    phone.page.get_by_label("问题描述（必填）").fill("屋顶漏雨")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("household")

    phone.page.reload()
    assert phone.waiting() == "等待上传：20 条走访，2 条更新"
    context.close()

    context = launch_persistent(profile, offline=True)  # the browser restarts with no signal
    phone = Phone(context.pages[0], live.url)
    phone.open("#/sync")
    assert phone.screen("sync").locator(".waiting").inner_text() == "等待上传：20 条走访，2 条更新"
    assert phone.go_online(context).startswith("已上传 22 条")
    assert phone.screen("sync").locator(".waiting").inner_text() == "没有等待上传的记录"

    assert count(live.app, Visit) == 20
    assert count(live.app, Problem) == 2
    assert phone.errors == []


def test_two_cadres_editing_one_field_offline_end_equal_and_both_see_the_conflict(
    live, browser, screenshot
):
    phones, contexts = [], []
    for username in ("cadre_a", "cadre_b"):
        context = browser.new_context(**PHONE)
        phone = Phone(context.new_page(), live.url)
        phone.sign_in(username)
        contexts.append(context)
        phones.append(phone)
    for phone, context, number in zip(
        phones, contexts, ["13800000001", "13800000002"], strict=True
    ):
        context.set_offline(True)
        phone.household("户主2").get_by_role("link", name="修改户信息").click()
        phone.page.get_by_label("联系电话").fill(number)
        phone.page.get_by_role("button", name="保存").click()
        phone.screen("household")
    assert phones[0].go_online(contexts[0]) == "已上传 1 条，收到 0 条更新"
    assert phones[1].go_online(contexts[1]) == "已上传 1 条，收到 0 条更新，1 处冲突"
    assert phones[0].sync() == "已上传 0 条，收到 1 条更新，1 处冲突"  # cadre_a learns of it

    shown = []
    for phone in phones:
        card = phone.household("户主2")
        shown.append(card.locator(".call").inner_text())
        conflict = card.locator(".conflict")
        assert "13800000001" in conflict.inner_text()
        assert "13800000002" in conflict.inner_text()
    assert shown[0] == shown[1]
    assert shown[0] in ("拨打 13800000001", "拨打 13800000002")
    screenshot(phones[1].page, "conflict")
    for phone in phones:
        phone.open("#/sync")
        assert "户主2 · 联系电话" in phone.screen("sync").inner_text()
        assert phone.errors == []


def test_a_new_version_installs_in_the_background_and_waits_for_the_user(live, browser, screenshot):
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    live.faults.add("sync")  # the server cannot sync: the visits stay unsent
    for index in range(5):
        phone.record_visit(f"户主{index % 3 + 1}")

    live.app.config["PWA_VERSION"] = "v2"
    phone.open("#/settings")
    phone.screen("settings").get_by_role("button", name="检查更新").click()
    banner = phone.page.locator("#update-banner")
    banner.wait_for()
    assert "v1" in phone.screen("settings").inner_text()  # still the old version
    phone.page.reload()  # a reload does not install it either
    banner.wait_for()
    assert "v1" in phone.screen("settings").inner_text()
    assert phone.waiting() == "等待上传：5 条走访，0 条更新"
    screenshot(phone.page, "update-banner")

    phone.open("#/settings")
    banner.get_by_role("button", name="更新").click()  # the user accepts: it takes over
    phone.page.locator("main .settings", has_text="v2").wait_for()
    assert banner.is_hidden()
    assert phone.waiting() == "等待上传：5 条走访，0 条更新"

    phone.open("#/sync")  # the sync the app started on reloading retries, then says so
    failed = "上传失败：服务器内部错误，数据未丢失，请稍后重试。"
    assert phone.result() == failed + "5 条记录仍保存在本机，下次同步时上传。"
    live.faults.clear()
    assert phone.sync().startswith("已上传 5 条")
    assert phone.waiting() == "没有等待上传的记录"
    assert count(live.app, Visit) == 5
    assert phone.errors == []


def test_a_routine_visit_takes_three_taps_on_a_360_px_phone(live, browser, screenshot):
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.open()
    phone.screen("login")
    screenshot(phone.page, "login")
    phone.sign_in("cadre_a")
    screenshot(phone.page, "week")

    phone.taps = 0
    phone.tap(phone.screen("week").locator(".row", has_text="户主1"))
    phone.screen("household")
    screenshot(phone.page, "household")
    phone.tap(phone.page.get_by_role("link", name="记录走访"))
    phone.screen("visit")
    screenshot(phone.page, "visit")
    phone.tap(phone.page.get_by_role("button", name="保存"))
    done = phone.screen("week").locator("#group-done")
    done.locator(".row", has_text="户主1").wait_for()
    assert phone.taps == 3  # the issue allows at most 5

    phone.record_visit("户主2")
    phone.household("户主3").get_by_role("link", name="记录走访").click()
    phone.answer_no("基本医疗有保障")
    phone.page.get_by_label("基本医疗方面有什么问题").fill("未参加医保")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("found")
    screenshot(phone.page, "problem-found")
    phone.page.get_by_role("link", name="登记问题").click()
    phone.screen("form")
    screenshot(phone.page, "problem-new")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("found")
    phone.open("#/problems")
    phone.screen("problems").locator(".row").first.wait_for()
    screenshot(phone.page, "problems")
    phone.open("#/sync")
    phone.screen("sync")
    screenshot(phone.page, "sync-waiting")
    phone.sync()
    screenshot(phone.page, "sync-done")
    phone.open("#/settings")
    phone.screen("settings")
    screenshot(phone.page, "settings")
    phone.screen("settings").get_by_role("button", name="English").click()
    phone.page.locator("#title", has_text="Settings").wait_for()
    assert "Visits" in phone.page.locator("#tabs").inner_text()
    phone.open("#/")
    screenshot(phone.page, "week-english")
    phone.open("#/settings")
    phone.screen("settings").get_by_role("button", name="中文").click()
    phone.page.locator("#title", has_text="设置").wait_for()
    assert phone.errors == []


def test_a_revoked_phone_offers_its_unsent_records_as_a_file_then_wipes_itself(live, browser):
    context = browser.new_context(**PHONE, accept_downloads=True)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_c")
    phone.record_visit("户主4")
    with live.app.app_context():
        device_id = db.session.scalar(
            select(Device.id).where(Device.user_id == live.county.users["cadre_c"])
        )
    admin = live.county.device("admin")
    assert (
        admin.client.delete(f"/api/v1/devices/{device_id}", headers=admin.headers).status_code
        == 200
    )

    phone.open("#/sync")
    phone.screen("sync").get_by_role("button", name="立即同步").click()
    revoked = phone.screen("revoked")
    with phone.page.expect_download() as download:
        revoked.get_by_role("button", name="导出未上传记录（1 条）").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert [(op["type"], op["action"]) for op in exported["outbox"]] == [("visit", "create")]
    revoked.get_by_role("button", name="清除本机数据").click()
    phone.screen("login")
    phone.page.reload()
    phone.screen("login")
    assert count(live.app, Visit) == 0
    assert phone.errors == []


def test_weeks_and_months_are_counted_in_shanghai_whatever_zone_the_phone_is_set_to(live, browser):
    context = browser.new_context(**PHONE, timezone_id="America/New_York")
    page = context.new_page()
    page.goto(live.url)
    states = page.evaluate(
        """import("/app/js/time.js").then(({ visitStatus }) => {
            const now = Date.parse("2026-11-23T09:00:00+08:00");  // a Monday in Shanghai
            const at = (iso) => Date.parse(iso);
            return [
                visitStatus("weekly", at("2026-11-23T00:30:00+08:00"), now),  // this week
                visitStatus("weekly", at("2026-11-22T23:30:00+08:00"), now),  // last Sunday
                visitStatus("weekly", at("2026-11-15T23:30:00+08:00"), now),  // two weeks ago
                visitStatus("weekly", undefined, now),
                visitStatus("monthly", at("2026-11-01T00:10:00+08:00"), now),
                visitStatus("monthly", at("2026-10-31T23:50:00+08:00"), now),
                visitStatus("monthly", at("2026-09-30T23:50:00+08:00"), now),
            ];
        })"""
    )
    assert states == ["done", "due", "overdue", "overdue", "done", "due", "overdue"]


def test_a_change_the_server_refuses_is_listed_with_the_reason_and_never_sent_again(live, browser):
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    context.set_offline(True)
    phone.record_visit("户主1")
    admin = live.county.device("admin")  # meanwhile 上村 goes to another cadre
    moved = admin.client.put(
        f"/api/v1/admin/users/{live.county.users['cadre_a']}/assignment",
        json={"region_ids": [live.county.regions["lower"]], "household_ids": []},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.get_json()

    assert phone.go_online(context).endswith("1 条被退回")
    screen = phone.screen("sync")
    rejected = screen.locator(".rejected")
    assert "走访 · 新建 · 户主1" in rejected.inner_text()
    assert "原因： 不在你负责的村或农户范围内" in rejected.inner_text()
    assert screen.locator(".waiting").inner_text() == "没有等待上传的记录"
    phone.open("#/")
    assert phone.screen("week").locator(".row").all_inner_texts()[0].startswith("户主4")
    assert "户主1" not in phone.screen("week").inner_text()  # 上村 left the phone

    phone.open("#/sync")
    phone.screen("sync").get_by_role("button", name="知道了").click()
    phone.screen("sync").locator(".rejected").wait_for(state="detached")
    assert count(live.app, Visit) == 0
    assert phone.errors == []


def test_visits_are_corrected_and_voided_and_problems_move_on_as_new_ops(live, browser):
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.record_visit("户主1")
    phone.record_visit("户主1")
    card = phone.household("户主1")
    phone.page.wait_for_timeout(1100)  # so that "now" is not the visit's time to the second
    card.get_by_role("link", name="更正").first.click()
    phone.page.get_by_text("电话", exact=True).click()
    phone.page.get_by_role("button", name="保存").click()
    card = phone.screen("household")
    card.get_by_role("button", name="作废").first.click()
    phone.page.get_by_label("作废原因（必填）").fill("重复录入")
    phone.page.get_by_role("dialog").get_by_role("button", name="作废").click()
    phone.screen("household").get_by_text("已作废：重复录入").wait_for()
    phone.household("户主1").get_by_role("link", name="登记问题").click()
    phone.page.get_by_label("问题描述（必填）").fill("缺少冬衣")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("household").locator(".row", has_text="缺少冬衣").click()
    phone.page.get_by_role("button", name="开始处理").click()
    phone.page.locator(".status", has_text="处理中").wait_for()
    assert phone.sync().startswith("已上传 6 条")

    with live.app.app_context():
        stored = {v.id: json.loads(v.data) for v in db.session.scalars(select(Visit))}
        problem = json.loads(db.session.scalars(select(Problem)).one().data)
    visits = list(stored.values())
    corrections = [v for v in visits if v["corrects"]]
    assert len(visits) == 3 and len(corrections) == 1
    assert corrections[0]["mode"] == "phone"
    # the correction keeps the time of the visit it corrects (CONTRACT §10)
    assert corrections[0]["visited_at"] == stored[corrections[0]["corrects"]]["visited_at"]
    assert [v["void_reason"] for v in visits if v["voided"]] == ["重复录入"]
    assert problem["status"] == "in_progress"
    assert phone.errors == []


def test_a_visit_made_days_ago_is_entered_with_its_time_and_never_in_the_future(live, browser):
    """走访时间 on the visit screen: an earlier day lands in its own week on the server; a
    time later than now is refused on the phone (and the picker offers none)."""
    context = browser.new_context(**PHONE, timezone_id="Asia/Shanghai")
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime.now(shanghai)
    day = (now - timedelta(days=3)).date()
    phone.household("户主1")
    phone.tap(phone.page.get_by_role("link", name="记录走访"))
    when = phone.screen("visit").get_by_label("走访时间")
    assert when.get_attribute("max") <= now.strftime("%Y-%m-%dT%H:%M")
    when.fill((now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("visit").get_by_text("走访时间不能晚于现在").wait_for()
    when.fill(f"{day.isoformat()}T10:00")
    phone.page.get_by_role("button", name="保存").click()
    phone.screen("week")
    assert phone.sync().startswith("已上传 1 条")

    with live.app.app_context():
        [visit] = [json.loads(v.data) for v in db.session.scalars(select(Visit))]
        year, week, _ = day.isocalendar()
        upper = live.county.regions["upper"]
        visited = coverage(f"{year}-W{week:02d}", upper)["summary"]["visited"]
    assert visit["visited_at"] == f"{day.isoformat()}T10:00:00+08:00"
    assert visit["visited_at_effective"] == visit["visited_at"]
    assert visited == 1
    assert phone.errors == []


QUEUE_VISITS = """async ([count, householdId]) => {
    const { open } = await import("/app/js/db.js");
    const outbox = await import("/app/js/outbox.js");
    const { localIso } = await import("/app/js/time.js");
    const db = await open();
    for (let i = 0; i < count; i++) {
        await outbox.create(db, "visit", { household_id: householdId, visited_at: localIso(),
            mode: "phone", people_seen: [] });
    }
}"""


def test_batches_halve_until_the_server_takes_them(live, browser):
    context = browser.new_context(**PHONE)
    phone = Phone(context.new_page(), live.url)
    phone.sign_in("cadre_a")
    phone.page.evaluate(QUEUE_VISITS, [120, live.county.households["h2"]])
    live.app.config["MAX_PUSH_OPS"] = 30  # 200 → 413, 100 → 413, 50 → 413, 25 fits
    assert phone.sync().startswith("已上传 120 条")
    assert count(live.app, Visit) == 120
    assert phone.errors == []
