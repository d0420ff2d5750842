"""What the browser tests of XLSForm visits share: publishing a form written in the test as
the weekly visit form, and reading the supervisor's submissions workbook back."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook

from server.admin.forms_service import ImportResult, import_xlsform
from tests.samples.make_xlsforms import workbook_bytes

WEEKLY = [["form_id"], ["weekly_visit"]]


def publish(live: Any, sheets: dict[str, list[list[Any]]]) -> ImportResult:
    """The workbook of these sheets imported on the live server (a settings sheet naming
    ``weekly_visit`` unless the sheets bring their own), as an admin's upload would be."""
    content = workbook_bytes({"settings": WEEKLY, **sheets})
    with live.app.app_context():
        return import_xlsform(io.BytesIO(content), actor=None)


def submissions(live: Any, period: str) -> dict[str, list[dict[str, Any]]]:
    """The supervisor's submissions workbook of the weekly form: each sheet's rows by its
    header (the visits first, then a sheet per repeat)."""
    supervisor = live.county.device("sup_east")
    export = supervisor.client.get(
        "/api/v1/reports/submissions.xlsx",
        query_string={
            "form_id": "weekly_visit",
            "period": period,
            "region_id": live.county.regions["east"],
        },
        headers=supervisor.headers,
    )
    assert export.status_code == 200, export.get_data()[:300]
    sheets = {}
    for sheet in load_workbook(io.BytesIO(export.data)).worksheets:
        header, *rows = sheet.iter_rows(values_only=True)
        sheets[sheet.title] = [dict(zip(header, row, strict=True)) for row in rows]
    return sheets
