"""Notices in headless Chromium (issue 14 item 11): an admin points 青山县 at a WeCom group
robot on the management page, the overdue digest runs, its notice arrives at the robot (a
stand-in on 127.0.0.1) and the dashboard's jobs section lists the delivery as sent."""

from __future__ import annotations

import pytest

from server.jobs import run_now
from tests.browser.test_manage import open_page, sign_in, wait_toast
from tests.notice_receivers import robot

pytestmark = pytest.mark.browser


def test_an_admin_sets_a_wecom_robot_and_sees_the_digest_delivered(live, browser, screenshot):
    errors: list[str] = []
    context, page = open_page(live, browser, "/admin/manage", errors)
    sign_in(page, "admin")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")
    with robot() as wecom:
        form = page.locator("#notices form[data-channel=wecom]")
        assert page.locator("#notice-region option").first.text_content() == "青山县"
        form.locator("[name=url]").fill(wecom.url)
        form.locator("button[type=submit]").click()
        wait_toast(page, "通知渠道已保存")
        placeholder = form.locator("[name=url]").get_attribute("placeholder")
        assert placeholder.startswith("已保存：http://127.0.0.1:")
        assert "robot-key" not in placeholder
        with live.app.app_context():
            run_now("overdue_digest")
            assert run_now("notice_delivery").message.startswith("发送 1 条")
    (sent,) = wecom.received
    assert sent.body["markdown"]["content"].startswith("### 青山县 逾期未走访提醒")

    page.goto(f"{live.url}/admin")
    page.wait_for_selector("#deliveries tbody tr td.notice.sent")
    row = page.locator("#deliveries tbody tr").first
    assert "已发送" in row.text_content() and "企业微信群机器人" in row.text_content()
    page.locator("#jobs").scroll_into_view_if_needed()
    screenshot(page, "notices")
    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()
