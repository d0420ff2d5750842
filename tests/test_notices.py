"""Notices that reach people (issue 14 item 11, server/notices, docs/admin.md "Notices"): the
overdue digest, problem escalations and the weekly bulletin go to each region's WeCom or
DingTalk group robot and e-mail, queued by the job and sent by ``notice_delivery``, retried
with back-off, every delivery on record; a notice holds figures and a link, never an ID or a
phone number. The robots and the mail server are stand-ins on 127.0.0.1 (notice_receivers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.admin.accounts import create_user
from server.jobs import job_statuses, run_now
from server.notices.channels import BadWebhook, check_webhook_url, dingtalk_signed_url
from server.service import create_server_records, store
from server.storage.models import NoticeDelivery
from tests.county import PASSWORD, County, Device, uid
from tests.notice_receivers import robot, smtp_server

ADMIN = "/api/v1/admin"
PUBLIC_URL = "https://zoufang.example.cn"
DIGEST_DAY = "2026-11-26T07:30:00+08:00"


class Clock:
    def __init__(self, local: str) -> None:
        self.at = datetime.fromisoformat(local).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(any_county: County) -> Clock:
    any_county.app.config.update(CLOCK=Clock(DIGEST_DAY), PUBLIC_URL=PUBLIC_URL)
    return any_county.app.config["CLOCK"]  # type: ignore[no-any-return]


@pytest.fixture
def admin(any_county: County) -> Device:
    return any_county.device("admin")


def put(device: Device, region: str, channel: str, body: dict[str, Any]) -> Any:
    path = f"{ADMIN}/regions/{region}/notices/{channel}"
    return device.client.put(path, json=body, headers=device.headers)


def configure(county: County, admin: Device, key: str, channel: str, **body: Any) -> None:
    response = put(admin, county.regions[key], channel, body)
    assert response.status_code == 200, response.get_json()


def run(county: County, job: str) -> str:
    with county.app.app_context():
        result = run_now(job)
    assert result.status == "ok", result.message
    return result.message


def deliveries(county: County) -> list[Any]:
    with county.app.app_context(), store().engine.connect() as conn:
        return list(conn.execute(select(NoticeDelivery).order_by(NoticeDelivery.id)))


def listed(device: Device, **query: str) -> list[dict[str, Any]]:
    response = device.client.get(
        f"{ADMIN}/notices/deliveries", query_string=query, headers=device.headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["deliveries"]  # type: ignore[no-any-return]


# --- the three channels ---------------------------------------------------------------------


def test_the_overdue_digest_reaches_a_wecom_robot_with_its_figures_and_a_link(
    any_county, clock, admin
):
    with robot() as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url)
        assert run(any_county, "overdue_digest").endswith("逾期 5 户, 待发通知 1 条")
        assert wecom.received == []  # the job queued it; it waits on no webhook
        assert run(any_county, "notice_delivery") == "发送 1 条, 待重试 0 条, 失败 0 条"
    (sent,) = wecom.received
    assert (sent.path, sent.query) == ("/cgi-bin/webhook/send", {"key": "robot-key-1234"})
    assert sent.body["msgtype"] == "markdown"
    content = sent.body["markdown"]["content"]
    assert content.startswith("### 东河镇 逾期未走访提醒 2026-11-26")
    assert "逾期未走访 **4** 户（其中从未走访 4 户）" in content
    assert "- 上村：3 户\n- 下村：1 户" in content
    assert f"({PUBLIC_URL}/admin?region={any_county.regions['east']})" in content


def test_a_dingtalk_robot_with_a_secret_gets_a_signed_markdown_message(any_county, clock, admin):
    secret = "SEC0123456789abcdef"
    with robot() as dingtalk:
        configure(any_county, admin, "county", "dingtalk", url=dingtalk.url, secret=secret)
        run(any_county, "overdue_digest")
        run(any_county, "notice_delivery")
    (sent,) = dingtalk.received
    timestamp = sent.query["timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    assert sent.query["sign"] == base64.b64encode(expected.digest()).decode()
    assert abs(int(timestamp) / 1000 - datetime.now(UTC).timestamp()) < 60
    markdown = sent.body["markdown"]
    assert markdown["title"] == "青山县 逾期未走访提醒 2026-11-26"
    assert "- 东河镇：4 户\n- 西岭镇：1 户" in markdown["text"]


def test_the_dingtalk_signature_is_url_encoded_as_dingtalk_documents():
    signed = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", "s", 1)
    digest = base64.b64encode(hmac.new(b"s", b"1\ns", hashlib.sha256).digest()).decode()
    encoded = digest.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert (
        signed == f"https://oapi.dingtalk.com/robot/send?access_token=t&timestamp=1&sign={encoded}"
    )


def test_email_reaches_the_recipients_over_smtp_after_logging_in(any_county, clock, admin):
    with smtp_server() as mailbox:
        any_county.app.config.update(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=mailbox.port,
            SMTP_USER="notices",
            SMTP_PASSWORD=123456,  # as ZOUFANG_SMTP_PASSWORD=123456 reads
            SMTP_FROM="走访系统 <zoufang@example.cn>",
        )
        to = ["duban@example.cn", "zhen@example.cn"]
        configure(any_county, admin, "east", "email", recipients=to)
        run(any_county, "overdue_digest")
        run(any_county, "notice_delivery")
    (message,) = mailbox.messages
    assert mailbox.logins == [("notices", "123456")]
    assert mailbox.envelopes == [("zoufang@example.cn", to)]
    assert message["Subject"] == "东河镇 逾期未走访提醒 2026-11-26"
    assert "逾期未走访 **4** 户" in message.get_content()
    assert [d.status for d in deliveries(any_county)] == ["sent"]


# --- retries and the record -----------------------------------------------------------------


def test_a_robot_that_fails_once_is_sent_on_the_retry_a_minute_later(any_county, clock, admin):
    with robot([(500, {}), (200, {"errcode": 0, "errmsg": "ok"})]) as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url)
        run(any_county, "overdue_digest")
        assert run(any_county, "notice_delivery") == "发送 0 条, 待重试 1 条, 失败 0 条"
        (failed,) = listed(admin)
        assert (failed["status"], failed["attempts"]) == ("retrying", 1)
        assert failed["last_error"].startswith("HTTP 500")
        assert failed["next_attempt_at"] == "2026-11-25T23:31:00+00:00"
        clock.advance(seconds=59)
        assert run(any_county, "notice_delivery") == "发送 0 条, 待重试 0 条, 失败 0 条"
        clock.advance(seconds=1)
        assert run(any_county, "notice_delivery") == "发送 1 条, 待重试 0 条, 失败 0 条"
    assert len(wecom.received) == 2
    (sent,) = listed(admin)
    assert (sent["status"], sent["attempts"], sent["next_attempt_at"]) == ("sent", 2, None)
    assert sent["sent_at"] == "2026-11-25T23:31:00+00:00"


def test_a_robot_that_keeps_failing_is_retried_after_1_5_and_30_minutes_then_given_up(
    any_county, clock, admin
):
    with robot([(500, {})]) as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url)
        run(any_county, "overdue_digest")
        waits = []
        for _attempt in range(4):
            run(any_county, "notice_delivery")
            (delivery,) = deliveries(any_county)
            if delivery.next_attempt_at is None:
                break
            waits.append(delivery.next_attempt_at - clock().replace(tzinfo=None))
            clock.at = delivery.next_attempt_at.replace(tzinfo=UTC)
        clock.advance(hours=2)
        run(any_county, "notice_delivery")
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)]
    assert len(wecom.received) == 4
    (given_up,) = listed(admin, status="failed")
    assert (given_up["attempts"], given_up["last_error"]) == (4, "HTTP 500 Internal Server Error")
    with any_county.app.app_context():
        job = next(j for j in job_statuses() if j["name"] == "notice_delivery")
    assert job["last_message"] == "发送 0 条, 待重试 0 条, 失败 0 条"


def test_a_robot_answering_a_non_zero_errcode_has_failed(any_county, clock, admin):
    with robot([(200, {"errcode": 93000, "errmsg": "invalid webhook url"})]) as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url)
        run(any_county, "overdue_digest")
        run(any_county, "notice_delivery")
    (delivery,) = listed(admin)
    assert (delivery["status"], delivery["last_error"]) == (
        "retrying",
        "errcode 93000: invalid webhook url",
    )


def test_each_run_of_a_job_queues_one_notice_per_channel_and_it_is_sent_once(
    any_county, clock, admin
):
    with robot() as county_robot, robot() as east_robot:
        configure(any_county, admin, "county", "wecom", url=county_robot.url)
        configure(any_county, admin, "east", "wecom", url=east_robot.url, jobs=["overdue_digest"])
        run(any_county, "overdue_digest")
        assert sorted((d.region_id, d.job) for d in deliveries(any_county)) == sorted(
            [
                (any_county.regions["county"], "overdue_digest"),
                (any_county.regions["east"], "overdue_digest"),
            ]
        )
        run(any_county, "notice_delivery")
        run(any_county, "notice_delivery")
        clock.advance(hours=1)
        run(any_county, "notice_delivery")
    assert (len(county_robot.received), len(east_robot.received)) == (1, 1)


def test_a_region_without_a_channel_for_the_job_gets_no_notice(any_county, clock, admin):
    with robot() as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url, jobs=["weekly_bulletin"])
        assert "待发通知" not in run(any_county, "overdue_digest")
    assert deliveries(any_county) == []


# --- what a notice says, and never says ----------------------------------------------------


def push_overdue_problem(county: County, clock: Clock) -> None:
    cadre = county.device("cadre_a")
    problem = {
        "household_id": county.households["h1"],
        "category": "health",
        "description": "药快吃完了，电话 13905631201",
        "due_date": "2026-11-20",
        "assignee_id": county.users["cadre_a"],
    }
    response = cadre.push(
        [cadre.op("create", "problem", uid(), problem)], device_time=clock().isoformat()
    )
    assert response.get_json()["results"][0]["status"] == "applied"


def test_no_notice_holds_an_id_number_a_phone_number_or_a_household(any_county, clock, admin):
    """h1 has a phone number, a person with an ID number and an overdue problem whose text
    holds the phone: every notice of every job counts it, and names none of them."""
    push_overdue_problem(any_county, clock)
    with robot() as wecom, robot() as dingtalk:
        for key in ("county", "east"):
            configure(any_county, admin, key, "wecom", url=wecom.url)
            configure(any_county, admin, key, "dingtalk", url=dingtalk.url, secret="SECabc")
        run(any_county, "overdue_digest")
        assert run(any_county, "problem_escalation").endswith("升级 1 个逾期问题, 待发通知 4 条")
        clock.advance(days=4)  # Monday 2026-11-30: the bulletin of W48
        run(any_county, "weekly_bulletin")
        run(any_county, "notice_delivery")
    texts = [d.title + d.text for d in deliveries(any_county)]
    assert len(texts) == 12 and all(d.status == "sent" for d in deliveries(any_county))
    received = [str(r.body) for r in wecom.received + dingtalk.received]
    assert len(received) == 12
    assert all("走访" in d.title for d in deliveries(any_county))  # a DingTalk keyword
    assert any("问题督办" in text and "上村：1 个" in text for text in texts)
    assert any("2026-W48 走访覆盖率通报" in text and "应访 **5** 户" in text for text in texts)
    secrets = ["341823194110201790", "13905631201", "341823101001", "户主1", "汪德明", "药快"]
    for text in texts + received:
        assert not any(secret in text for secret in secrets), text
        assert re.search(r"\d{11,}", text.split("](")[0]) is None, text


# --- the configuration ----------------------------------------------------------------------


@pytest.fixture
def admin2(any_county: County) -> Device:
    """The admin of another county, 白水县."""
    other = uid()
    with any_county.app.app_context():
        region = {"parent_id": None, "level": "county", "name": "白水县", "code": None}
        create_server_records([("region", other, region)], actor=None)
        create_user("admin2", PASSWORD, "admin", [other], [], "白水管理员")
    return any_county.device("admin2")


def test_an_admin_of_another_county_finds_no_notices_of_this_one(any_county, admin, admin2):
    with robot() as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url)
    east = any_county.regions["east"]
    for method in ("GET", "PUT", "DELETE"):
        path = f"{ADMIN}/regions/{east}/notices" + ("" if method == "GET" else "/wecom")
        response = admin2.client.open(
            path, method=method, json={"url": "https://x.example"}, headers=admin2.headers
        )
        assert response.status_code == 404, (method, response.get_json())
        assert response.get_json()["error"]["code"] == "not_found"
    for username in ("sup_east", "cadre_a"):
        device = any_county.device(username)
        assert put(device, east, "wecom", {"url": "https://x.example"}).status_code == 403
    (channel,) = admin.client.get(
        f"{ADMIN}/regions/{east}/notices", headers=admin.headers
    ).get_json()["channels"]
    assert channel["url"].startswith("http://127.0.0.1:")


def test_deliveries_are_listed_to_those_who_administer_or_supervise_their_region(
    any_county, clock, admin, admin2
):
    with robot() as wecom:
        configure(any_county, admin, "county", "wecom", url=wecom.url)
        configure(any_county, admin, "east", "wecom", url=wecom.url)
        run(any_county, "overdue_digest")
    assert len(listed(admin)) == 2
    assert listed(admin2) == []
    supervisor = any_county.device("sup_east")
    assert [d["region_id"] for d in listed(supervisor)] == [any_county.regions["east"]]
    assert (
        any_county.device("cadre_a")
        .client.get(f"{ADMIN}/notices/deliveries", headers=any_county.device("cadre_a").headers)
        .status_code
        == 403
    )


def test_a_robots_url_and_secret_are_kept_but_never_shown_back_whole(any_county, admin):
    county = any_county.regions["county"]
    url = "https://oapi.dingtalk.com/robot/send?access_token=9f8e7d6c5b4a3921xyzw"
    configure(any_county, admin, "county", "dingtalk", url=url, secret="SECsupersecretvalue")
    configure(any_county, admin, "county", "dingtalk", jobs=["weekly_bulletin"])  # keeps both
    answer = admin.client.get(f"{ADMIN}/regions/{county}/notices", headers=admin.headers)
    (channel,) = answer.get_json()["channels"]
    assert channel["url"] == "https://oapi.dingtalk.com/…xyzw"
    assert (channel["secret_set"], channel["jobs"]) == (True, ["weekly_bulletin"])
    assert "9f8e7d6c5b4a" not in answer.get_data(as_text=True)
    assert "supersecret" not in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://robots.example.cn/send",
        "javascript:alert(1)",
        "gopher://127.0.0.1:25/",
        "https://",
        "https://user:pass@robots.example.cn/send",
        "/cgi-bin/webhook/send",
    ],
)
def test_a_webhook_that_is_not_plain_http_is_refused(app, url):
    with pytest.raises(BadWebhook):
        check_webhook_url(url)


def test_a_refused_webhook_is_a_validation_error_and_nothing_is_stored(any_county, admin):
    east = any_county.regions["east"]
    response = put(admin, east, "wecom", {"url": "file:///etc/passwd"})
    assert response.status_code == 422
    assert "url" in response.get_json()["error"]["details"]["fields"]
    answer = admin.client.get(f"{ADMIN}/regions/{east}/notices", headers=admin.headers)
    assert answer.get_json()["channels"] == []


def test_notices_go_to_a_county_or_a_township_and_email_needs_an_smtp_server(any_county, admin):
    upper, east = any_county.regions["upper"], any_county.regions["east"]
    village = put(admin, upper, "wecom", {"url": "https://qyapi.weixin.qq.com/x?key=k"})
    assert village.status_code == 422
    email = put(admin, east, "email", {"recipients": ["duban@example.cn"]})
    assert email.status_code == 422
    assert "ZOUFANG_SMTP_HOST" in str(email.get_json()["error"]["details"])
    assert put(admin, east, "fax", {"url": "https://x.example"}).status_code == 404


def test_a_channel_deleted_gets_no_more_notices_and_its_waiting_ones_fail(any_county, clock, admin):
    east = any_county.regions["east"]
    with robot() as wecom:
        configure(any_county, admin, "east", "wecom", url=wecom.url)
        run(any_county, "overdue_digest")
        deleted = admin.client.delete(
            f"{ADMIN}/regions/{east}/notices/wecom", headers=admin.headers
        )
        assert deleted.status_code == 200
        run(any_county, "notice_delivery")
        assert "待发通知" not in run(any_county, "overdue_digest")
    assert wecom.received == []
    (delivery,) = listed(admin)
    assert (delivery["status"], delivery["last_error"]) == (
        "failed",
        "the region's channel was removed",
    )
