"""Last week's routine on the demo county, from the dashboard alone (issue 14, "Done when"):
the county supervisor signs in at /, picks last week, reads the visits behind a red village
and opens one, settles a conflict knowing what it is, downloads the week's bulletin, and the
overdue digest arrives at the county's WeCom robot (a stand-in on 127.0.0.1) with its figures
and a link that opens the dashboard. With ZOUFANG_DOCS_SCREENSHOTS=1 each step is a picture
for docs/reports.md ("The weekly routine")."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from server import jobs
from server.admin import seed
from server.admin.seed import seed_demo_county
from server.reports.periods import Period, week_label
from tests.browser.test_dashboard import SHANGHAI, open_dashboard
from tests.browser.test_supervisor_week import loaded
from tests.county import PASSWORD, County
from tests.notice_receivers import robot

pytestmark = pytest.mark.browser

HOUSEHOLDS = 60
MISSED = 3  # last week's visits the red village's cadre did not make


def last_monday() -> date:
    today = datetime.now(SHANGHAI).date()
    return today - timedelta(days=today.weekday() + 7)


def missing_visits(picked: dict[str, Any]) -> Any:
    """generate_demo_county, but the village of the first 包保干部's households lacks three of
    last week's visits (none a problem or a correction refers to): a village under the red
    line. ``picked`` learns the village and the two cadres who share a household there."""
    generate = seed.generate_demo_county

    def generated(**arguments: Any) -> Any:
        demo = generate(**arguments)
        paired = next(u for u in demo.users if u["household_ids"])
        household = next(h for h in demo.households if h["id"] == paired["household_ids"][0])
        village = household["village_id"]
        cadre = next(u for u in demo.users if u["region_ids"] == [village])
        township = next(r for r in demo.regions if r["id"] == village)["parent_id"]
        supervisor = next(u for u in demo.users if u["username"] == "county")
        in_village = {h["id"] for h in demo.households if h["village_id"] == village}
        referred = {p["visit_id"] for p in demo.problems} | {v["corrects"] for v in demo.visits}
        monday = last_monday().isoformat()
        sunday = (last_monday() + timedelta(days=6)).isoformat()
        missed = [
            v["id"]
            for v in demo.visits
            if v["household_id"] in in_village
            and monday <= v["visited_at"][:10] <= sunday
            and v["id"] not in referred
        ][:MISSED]
        assert len(missed) == MISSED, "the demo's village had too few visits last week"
        picked.update(
            household=household,
            village=next(r for r in demo.regions if r["id"] == village),
            writers=(cadre, paired),
            supervisor=supervisor,
            township=next(r for r in demo.regions if r["id"] == township),
            county=next(r for r in demo.regions if r["parent_id"] is None),
        )
        visits = [v for v in demo.visits if v["id"] not in missed]
        return dataclasses.replace(demo, visits=visits)

    return generated


@pytest.fixture
def county(app: Any, monkeypatch: pytest.MonkeyPatch) -> County:
    """The demo county of ``zoufang seed-demo --households 60`` (a village red last week),
    standing in for the small county that the ``live`` fixture serves."""
    picked: dict[str, Any] = {}
    monkeypatch.setattr(seed, "generate_demo_county", missing_visits(picked))
    with app.app_context():
        seed_demo_county(households=HOUSEHOLDS, password=PASSWORD, weeks=4)
    demo = County(app)
    demo.regions.update(village=picked["village"]["id"], county=picked["county"]["id"])
    demo.households["shared"] = picked["household"]["id"]
    demo.users.update(
        village_cadre=picked["writers"][0]["username"],
        paired_cadre=picked["writers"][1]["username"],
        supervisor=picked["supervisor"]["username"],
    )
    app.config["DEMO"] = picked  # names the test reads back
    return demo


def next_load(page: Any, action: Any) -> None:
    """Do ``action`` and wait for the dashboard load it starts to finish."""
    done = int(page.get_attribute("body", "data-loaded") or 0)
    action()
    loaded(page, done + 1)


def two_phones_edit_one_address(county: County) -> tuple[str, str]:
    """The village cadre and the 包保干部 change the same household's address offline."""
    first = county.device(county.users["village_cadre"], "村干部的手机")
    second = county.device(county.users["paired_cadre"], "包保干部的手机")
    shared = county.households["shared"]
    base = next(r for r in first.pull_all() if r["id"] == shared)["version"]
    second.pull_all()
    values = ("3组12号（新房）", "3组14号")
    for device, value in zip((first, second), values, strict=True):
        op = device.op("update", "household", shared, {"address": value}, base)
        response = device.push([op])
        assert response.status_code == 200, response.get_json()
    return values


def test_a_supervisor_runs_last_weeks_routine_on_the_demo_county(
    live, browser, screenshot, tmp_path
):
    county, demo = live.county, live.app.config["DEMO"]
    values = two_phones_edit_one_address(county)
    now = datetime.now(SHANGHAI)
    this_week, last_week = week_label(now.date()), week_label(last_monday())
    monday = (now - timedelta(days=now.weekday())).replace(hour=6, minute=0, tzinfo=None)
    with live.app.app_context():
        jobs.weekly_bulletin(monday)  # this Monday's job kept last week's bulletin

    # sign in at / as on a phone, and land on the dashboard
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors)
    page.goto(f"{live.url}/")
    page.get_by_label("用户名").fill(county.users["supervisor"])
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live.url}/admin**")
    loaded(page, 1)
    assert page.text_content("#who") == demo["supervisor"]["name"]
    if page.locator("#period-pick").input_value() != last_week:  # it opens there on a Monday
        assert page.locator("#period-pick").input_value() == this_week
        next_load(page, lambda: page.select_option("#period-pick", last_week))
    assert last_week in page.text_content("#period")
    next_load(page, lambda: page.click(f"#children a:text-is('{demo['township']['name']}')"))
    assert page.locator("#region option:checked").text_content().strip() == demo["township"]["name"]

    # the red village: under 90 % last week, its bar drawn red
    village = demo["village"]["name"]
    row = page.locator("#children tbody tr", has=page.locator(f"a:text-is('{village}')"))
    assert row.locator("progress.low").count() == 1
    due, visited = (int(row.locator("td.num").nth(i).text_content()) for i in (0, 1))
    assert visited / due < 0.9
    screenshot(page, "routine-week")

    # the visits behind it: as many as the table counted, of last week, one opened
    row.locator("a").click()
    page.wait_for_url("**/admin/visits?*")
    page.wait_for_selector("#visits tbody tr")
    assert village in page.text_content("#list-title")
    assert page.text_content("#list-total").strip().strip("（）()") == str(visited)
    visits = page.locator("#visits tbody tr")
    assert visits.count() == visited
    screenshot(page, "routine-village")
    visits.first.locator("a").first.click()
    page.wait_for_selector("#visit:not([hidden]) #visit-answers dt")
    assert "饮水安全有保障" in page.text_content("#visit-answers")
    screenshot(page, "routine-visit")

    # the conflict: whose address, written by whom, settled with the value not kept
    page.goto(f"{live.url}/admin?period={last_week}")
    loaded(page, 1)
    conflict = page.locator("#conflicts li.conflict")
    assert conflict.count() == 1
    read = conflict.text_content()
    assert f"{demo['household']['head_name']} · 地址" in read
    for writer in demo["writers"]:
        assert writer["name"] in read
    assert sorted(conflict.locator(".choice .value").all_text_contents()) == sorted(values)
    conflict.scroll_into_view_if_needed()
    screenshot(page, "routine-conflict")
    other = conflict.locator(".choice").nth(1)  # 另一值: the value the merge did not keep
    chosen = other.locator(".value").text_content()
    cadre = county.device(county.users["village_cadre"])
    before = next(r for r in cadre.pull_all() if r["id"] == county.households["shared"])
    assert before["data"]["address"] != chosen
    other.locator("button").click()
    page.wait_for_selector("#conflicts li.conflict", state="detached")
    after = next(r for r in cadre.pull_all() if r["id"] == county.households["shared"])
    assert after["data"]["address"] == chosen

    # last week's bulletin, as the Monday job kept it: a workbook naming the red village
    kept = page.locator(f"#bulletins li[data-period='{last_week}']")
    assert kept.count() == 1
    kept.scroll_into_view_if_needed()
    screenshot(page, "routine-bulletin")
    with page.expect_download() as download:
        kept.locator("a").click()
    saved = tmp_path / "bulletin.xlsx"
    download.value.save_as(saved)
    book = load_workbook(saved)
    assert book.sheetnames[:2] == ["覆盖率", "未访户"]
    cells = [c for row in book["覆盖率"].iter_rows(values_only=True) for c in row if c]
    title = Period.parse(last_week).title()  # 2026年第48周
    assert village in cells and any(title in str(cell) for cell in cells)

    # the county's WeCom robot gets today's overdue digest: its figures and a link
    live.app.config["PUBLIC_URL"] = live.url
    admin = county.device("admin")
    with robot() as wecom:
        path = f"/api/v1/admin/regions/{county.regions['county']}/notices/wecom"
        answer = admin.client.put(path, json={"url": wecom.url}, headers=admin.headers)
        assert answer.status_code == 200, answer.get_json()
        with live.app.app_context():
            assert jobs.run_now("overdue_digest").status == "ok"
            assert jobs.run_now("notice_delivery").message.startswith("发送 1 条")
    (sent,) = wecom.received
    content = sent.body["markdown"]["content"]
    county_name = demo["county"]["name"]
    assert content.startswith(f"### {county_name} 逾期未走访提醒")
    link = f"{live.url}/admin?region={county.regions['county']}"
    assert f"[打开看板查看详情]({link})" in content

    # the link opens the dashboard; the delivery is on record there
    page.goto(link)
    loaded(page, 1)
    overdue = page.text_content("#t-overdue")  # the county's tile and the digest agree
    assert f"逾期未走访 **{overdue}** 户" in content
    assert f"- {demo['township']['name']}：" in content
    page.wait_for_selector("#deliveries tbody tr td.notice.sent")
    assert "企业微信群机器人" in page.text_content("#deliveries tbody tr")
    page.locator("#jobs").scroll_into_view_if_needed()
    screenshot(page, "routine-digest")
    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()
