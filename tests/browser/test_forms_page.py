"""Forms on the administration page (issue 15), in headless Chromium: an admin uploads a bad
XLSForm and sees its problems by sheet and row, uploads the sample and sees it in the 360 px
preview the app's own form rendering draws (in Chinese and in English), publishes it, and
downloads the new version back as an XLSForm that imports to the same definition."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from server.admin.forms_service import published_form
from server.admin.xlsform_io import convert_workbook
from tests.browser.test_manage import open_page, sign_in

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_an_admin_previews_publishes_and_downloads_an_xlsform(live, browser, tmp_path):
    errors: list[str] = []
    context, page = open_page(live, browser, "/admin/manage", errors)
    sign_in(page, "admin")
    page.wait_for_selector("#form-versions tbody tr")

    page.set_input_files("#form-upload [name=file]", str(SAMPLES / "xlsform_unsupported.xlsx"))
    page.click("#form-upload button[type=submit]")
    page.wait_for_selector("#form-problems:not([hidden]) tbody tr")
    rows = page.locator("#form-problems tbody tr")
    assert rows.count() > 3
    first = rows.nth(0).locator("td")
    assert first.nth(0).inner_text() == "survey" and first.nth(1).inner_text().isdigit()
    assert page.is_disabled("#form-publish")

    page.set_input_files(
        "#form-upload [name=file]", str(SAMPLES / "xlsform_monthly_monitoring.xlsx")
    )
    page.click("#form-upload button[type=submit]")
    page.wait_for_selector("#form-summary.ok")
    assert page.is_hidden("#form-problems")
    frame_element = page.locator("#form-preview-frame")
    assert frame_element.bounding_box()["width"] == 360
    frame = page.frame_locator("#form-preview-frame")
    frame.locator("form.visit .card").first.wait_for()
    assert frame.locator("#main").inner_text().count("收入是否明显变化") == 1
    assert frame.locator("text=Has income changed markedly").count() == 0

    page.click("#form-preview button[data-lang=en]")
    frame.locator("text=Has income changed markedly").wait_for()

    page.click("#form-publish")
    page.wait_for_selector("#form-summary.done")
    with live.app.app_context():
        assert published_form("monthly_monitoring", 2) is not None
    version_row = page.locator("#form-versions tbody tr", has_text="monthly_monitoring").last
    assert version_row.locator("td").nth(1).inner_text() == "2"

    with page.expect_download() as downloading:
        version_row.locator("button").click()
    path = tmp_path / "download.xlsx"
    downloading.value.save_as(path)
    again = convert_workbook(io.BytesIO(path.read_bytes()), version=2)
    original = convert_workbook(SAMPLES / "xlsform_monthly_monitoring.xlsx", version=2)
    assert again["versions"][0]["fields"] == original["versions"][0]["fields"]
    assert page.evaluate("window.__violations") == []
    assert [e for e in errors if "status of 422" not in e] == []
    context.close()
