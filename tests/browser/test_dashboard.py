"""The supervisors' dashboard (督导台) at /admin, in headless Chromium: sign in as sup_east of
the small county, read this week's coverage, the trend, the overdue list, resolve a conflict
and move a problem on — under the PWA's strict CSP, with no violation and no console error."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from server.reports.periods import week_label
from server.service import store
from server.storage.models import Device, Snapshot
from tests.county import PASSWORD, uid

pytestmark = pytest.mark.browser

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAPTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1, "locale": "zh-CN"}
#: collects CSP violations from the first script that runs on the page
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def this_week_moment() -> str:
    """A moment a little in the past, inside the current Shanghai week."""
    now = datetime.now(SHANGHAI)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=1)
    return max(now - timedelta(seconds=30), monday).isoformat()


def seed(county: Any) -> dict[str, Any]:
    """东河镇 this week: h1 and h2 visited (2 of 4 due), h3 and h4 never visited; a problem in
    h1; a conflict on h2's address between cadre_a and cadre_b."""
    h = county.households
    a, b = county.device("cadre_a"), county.device("cadre_b")
    problem_id = uid()
    when = this_week_moment()
    ops = [
        a.visit(h["h1"], when),
        a.visit(h["h2"], when),
        a.op(
            "create",
            "problem",
            problem_id,
            {"household_id": h["h1"], "category": "housing", "description": "屋顶漏雨"},
        ),
    ]
    response = a.push(ops)
    assert response.status_code == 200, response.get_json()
    assert {r["status"] for r in response.get_json()["results"]} == {"applied"}, response.get_json()
    base = next(r for r in a.pull_all() if r["id"] == h["h2"])["version"]
    b.pull_all()
    assert (
        a.push([a.op("update", "household", h["h2"], {"address": "1组1号"}, base)]).status_code
        == 200
    )
    assert (
        b.push([b.op("update", "household", h["h2"], {"address": "1组2号"}, base)]).status_code
        == 200
    )
    return {"cadre": a, "problem_id": problem_id}


def open_dashboard(
    live: Any, browser: Any, errors: list[str], period: str | None = None
) -> tuple[Any, Any]:
    context = browser.new_context(**LAPTOP, accept_downloads=True)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    this_week = week_label(datetime.now(SHANGHAI).date())  # on a Monday it would open last week
    response = page.goto(f"{live.url}/admin?period={period or this_week}")
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe" not in policy
    return context, page


def test_a_supervisor_reads_the_week_and_acts_on_conflicts_and_problems(live, browser, screenshot):
    seeded = seed(live.county)
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors)

    # sign in with the same account as on the phone; the token stays in sessionStorage
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#main:not([hidden])")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")
    stored = page.evaluate("sessionStorage.getItem('zoufang.admin.session')")
    assert '"token"' in stored and page.evaluate("document.cookie") == ""
    assert page.text_content("#who") == "东督导"

    # this week's coverage of 东河镇: 4 due, 2 visited, 2 overdue (never visited), 50 %
    assert page.text_content("#t-due") == "4"
    assert page.text_content("#t-visited") == "2"
    assert page.text_content("#t-overdue") == "2"
    assert page.text_content("#t-coverage") == "50.0%"
    assert re.match(r"\d{4}-W\d{2}", page.text_content("#period"))
    assert page.locator("#region option:checked").text_content().strip() == "东河镇"
    rows = page.locator("#children tbody tr")
    assert rows.count() == 2
    cells = [[c.strip() for c in rows.nth(i).locator("td").all_text_contents()] for i in (0, 1)]
    assert {row[0]: row[1:] for row in cells} == {
        "上村": ["3", "2", "66.7%"],
        "下村": ["1", "0", "0.0%"],
    }

    # the trend: 12 weeks drawn on the canvas by the vendored Chart.js
    assert page.get_attribute("#trend-canvas", "data-weeks") == "12"
    drawn = page.evaluate(
        """() => {
          const canvas = document.getElementById("trend-canvas");
          const context = canvas.getContext("2d");
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
          let painted = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
          return {width: canvas.width, painted, chart: Boolean(window.Chart.getChart(canvas))};
        }"""
    )
    assert drawn["chart"] and drawn["width"] > 100 and drawn["painted"] > 500, drawn

    # overdue households: h3 and h4, never visited, with their cadres
    overdue = page.locator("#overdue tbody tr")
    assert overdue.count() == 2
    text = page.text_content("#overdue tbody")
    assert "户主3" in text and "户主4" in text and "从未走访" in text and "丙干部" in text

    # supervisors see jobs but not devices
    assert page.locator("#devices").is_hidden()
    assert page.locator("#jobs tbody tr").count() >= 1

    screenshot(page, "dashboard")

    # the weekly bulletin downloads through a Blob URL, fetched with the token
    with page.expect_download() as download:
        page.click("#bulletin")
    assert download.value.suggested_filename.endswith(".xlsx")

    # resolve the conflict with the second value shown
    conflict = page.locator("#conflicts li.conflict")
    assert conflict.count() == 1
    read = conflict.text_content()  # whose, which field, who wrote each value
    assert "户主2 · 地址" in read and "甲干部" in read and "乙干部" in read
    choice = conflict.locator(".choice").nth(1)
    chosen = choice.locator(".value").text_content()
    assert chosen in {"1组1号", "1组2号"}
    assert conflict.locator(".choice .value").all_text_contents() != [chosen, chosen]
    choice.locator("button").click()
    page.wait_for_selector("#conflicts li.conflict", state="detached")
    assert "没有待裁决的冲突" in page.text_content("#conflicts ul")
    household = next(
        r for r in seeded["cadre"].pull_all() if r["id"] == live.county.households["h2"]
    )
    assert household["data"]["address"] == chosen

    # move the problem from open to in progress, with a note
    problem = page.locator(f"#problems li[data-id='{seeded['problem_id']}']")
    assert problem.locator(".pill").text_content() == "待处理"
    assert "住房安全" in problem.text_content()  # its category in Chinese, not "housing"
    problem.locator("select[name=status]").select_option("in_progress")
    problem.locator("input[name=note]").fill("已联系施工队")
    problem.locator("button[type=submit]").click()
    page.wait_for_selector(f"#problems li[data-id='{seeded['problem_id']}'] .pill.in_progress")
    sup = live.county.device("sup_east")
    answer = sup.client.get(f"/api/v1/problems/{seeded['problem_id']}", headers=sup.headers)
    assert answer.get_json()["status"] == "in_progress"
    assert answer.get_json()["status_note"] == "已联系施工队"

    # English on request
    page.click("#lang")
    page.wait_for_selector("html[lang=en]", state="attached")
    assert page.text_content("#coverage h2") == "Visit coverage"
    page.click("#lang")
    page.wait_for_selector("html[lang=zh-CN]", state="attached")

    # the phone: one column, nothing wider than the screen
    page.set_viewport_size({"width": 360, "height": 740})
    page.evaluate("window.scrollTo(0, 0)")
    for _ in range(50):  # Chart.js follows the new width on its next resize observation
        if page.evaluate("document.getElementById('trend-canvas').clientWidth") <= 340:
            break
        page.wait_for_timeout(50)
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > 361 && !e.closest(".scroll"))
          .map((e) => `${e.tagName}#${e.id}.${e.className} ${e.getBoundingClientRect().right}`)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, wide
    screenshot(page, "dashboard-phone")

    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()


def test_admins_see_devices_and_revoke_one(live, browser):
    phone = live.county.device("cadre_a", label="甲的手机")
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors)
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#signin [name=username]", "admin")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")
    assert page.locator("#region option:checked").text_content().strip() == "青山县"
    row = page.locator("#devices tbody tr", has_text="甲的手机")
    row.locator("button").click()
    page.wait_for_selector("#devices tbody tr.revoked >> text=甲的手机")
    assert phone.pull().status_code == 401

    # signing out revokes the dashboard's own device: its token is no use to anyone after
    with page.expect_response(lambda r: r.request.method == "DELETE" and r.ok):
        page.click("#signout")
    assert page.locator("#signin").is_visible()
    with live.county.app.app_context(), store().engine.connect() as conn:
        active = conn.execute(
            select(Device.id).where(
                Device.user_id == live.county.users["admin"], Device.revoked_at.is_(None)
            )
        ).all()
    assert active == []
    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()


def test_the_dashboard_says_how_many_visits_were_entered_after_the_weeks_bulletin(live, browser):
    """A bulletin went out for this week and for the last; then a phone pushed a visit of each
    week (recorded then, offline since). Whichever week the dashboard opens on says it."""
    county, h = live.county, live.county.households
    now = datetime.now(SHANGHAI)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
    last_sunday = (monday - timedelta(hours=12)).isoformat()
    weeks = {monday: this_week_moment(), monday - timedelta(days=7): last_sunday}
    with county.app.app_context(), store().engine.begin() as conn:
        for start in weeks:
            year, week, _ = start.isocalendar()
            conn.execute(
                insert(Snapshot).values(
                    kind="bulletin",
                    period=f"{year}-W{week:02d}",
                    region_id=None,
                    taken_at=start.astimezone(UTC).replace(tzinfo=None),
                    data="{}",
                )
            )
    phone = county.device("cadre_a")
    response = phone.push([phone.visit(h["h1"], when) for when in weeks.values()])
    assert {r["status"] for r in response.get_json()["results"]} == {"applied"}
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors)
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")
    week = re.search(r"W\d{2}", page.text_content("#period")).group(0)
    assert page.text_content("#late") == f"{week}：1 次走访在通报后补录（1 户）"
    assert errors == []
    context.close()


def test_only_the_dashboards_own_files_are_served_under_admin(client):
    for path in ("/admin", "/admin/", "/admin/app.js", "/admin/vendor/chart.umd.min.js"):
        with client.get(path) as response:
            assert response.status_code == 200, path
            assert response.headers["Cache-Control"] == "no-cache", path
    with client.get("/admin") as response:
        assert "unsafe" not in response.headers["Content-Security-Policy"]
        assert response.mimetype == "text/html"
    with client.get("/admin/app.js") as response:
        assert response.mimetype == "text/javascript"
    for path in ("/admin/vendor/README.md", "/admin/../web.py", "/admin/%2e%2e/js/app.js"):
        assert client.get(path).status_code == 404, path
