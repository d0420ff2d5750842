"""Forms on the administration page (docs/admin.md "Forms"): upload an XLSForm, see every
problem by row or the form as the phone will render it, publish it, list every version, and
download any version back as an XLSForm.

The import is the one ``zoufang forms import-xlsform`` uses (server.admin.forms_service):
the same upload bounds, the same "sheet row N, column C: reason" problems, the next version
of the form, and nothing published when the upload is identical to the latest version.
Reading is for every admin; publishing is server-wide (every phone of every county pulls the
form), so it is for an admin of every county, like the visit policy.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

import forms
from forms.xlsform import XLSFormError
from server import service
from server.admin import forms_service
from server.admin.uploads import UploadTooLarge
from server.auth import Caller, current_caller, require_role
from server.http.errors import ApiError, wants_english
from server.http.request_checks import nul_fields, refuse_nul
from server.storage.models import Form

forms_admin = Blueprint("forms_admin", __name__, url_prefix="/api/v1/admin/forms")

#: an XLSForm is a few dozen kB; the bound leaves room for images pasted into a sheet
FORM_MAX_BYTES = 8 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _admin() -> Caller:
    caller = current_caller()
    require_role(caller, "admin")
    return caller


def _publisher() -> Caller:
    """An admin of every county: a published form reaches every phone of the server."""
    caller = _admin()
    if not service.administration(caller).everything:
        raise ApiError("forbidden", "only an admin of every county may publish a form")
    return caller


def _summary(form: forms.FormVersion) -> dict[str, Any]:
    return {
        "form_id": form.form_id,
        "version": form.version,
        "title": dict(form.title),
        "policy": form.policy,
        "fields": form.field_count(),
    }


@forms_admin.get("")
def form_versions() -> Response:
    """Every published form version (CONTRACT §9), as devices receive them, with its field
    count as ``zoufang forms list --json`` gives it."""
    _admin()
    with service.store().engine.connect() as conn:
        rows = conn.execute(
            select(Form.id, Form.form_id, Form.form_version, Form.version)
            .where(~Form.deleted)
            .order_by(Form.form_id, Form.form_version)
        ).all()
    items = []
    for row in rows:
        form = forms_service.published_form(row.form_id, row.form_version)
        if form is not None:
            items.append({"id": row.id, **_summary(form), "record_version": row.version})
    return jsonify({"forms": items})


def _imported(caller: Caller, dry_run: bool) -> forms_service.ImportResult:
    """The uploaded XLSForm (multipart field ``file``, optional ``form_id``) imported as the
    CLI imports it; 422 with every problem by row, 413 beyond the upload bounds."""
    request.max_content_length = FORM_MAX_BYTES
    upload = request.files.get("file")
    if upload is None:
        message = "send the XLSForm as multipart/form-data field 'file'"
        raise ApiError("validation_failed", message, {"fields": {"file": [message]}})
    form_id = request.form.get("form_id") or None
    if form_id is not None:
        refuse_nul(nul_fields(form_id, "form_id"))
    content = upload.read()
    upload.close()
    try:
        return forms_service.import_xlsform(
            io.BytesIO(content),
            filename=upload.filename or "form.xlsx",
            form_id=form_id,
            actor=caller.user_id,
            dry_run=dry_run,
        )
    except UploadTooLarge as exc:
        raise exc.localize(wants_english()) from None
    except XLSFormError as exc:
        raise _problems(exc) from None


def _problems(error: XLSFormError) -> ApiError:
    count = len(error.problems)
    message = (
        f"{count} problems in the XLSForm; nothing was published"
        if wants_english()
        else f"XLSForm 有 {count} 处问题，未发布"
    )
    problems = [
        {
            "sheet": p.sheet,
            "row": p.row,
            "column": p.column,
            "message": p.message,
            "text": str(p),
        }
        for p in error.problems
    ]
    return ApiError(
        "validation_failed",
        message,
        {"fields": {"file": [str(p) for p in error.problems]}, "problems": problems},
    )


@forms_admin.post("/preview")
def preview() -> Response:
    """What publishing this upload would do, storing nothing: the form version it would
    become (its ``form`` record data, which the preview page renders as the phone does), or
    ``unchanged`` when it is the latest version itself."""
    result = _imported(_admin(), dry_run=True)
    status = "new" if result.status == "dry_run" else "unchanged"
    form = result.form
    return jsonify({"status": status, **_summary(form), "form": form.to_record_data()})


@forms_admin.post("")
def publish() -> tuple[Response, int]:
    """Publish the upload as the next version of its form: 201, or 200 ``unchanged`` when it
    is identical to the latest version (nothing published)."""
    result = _imported(_publisher(), dry_run=False)
    status = 201 if result.status == "published" else 200
    return jsonify({"status": result.status, **_summary(result.form)}), status


@forms_admin.get("/<form_id>/<version>.xlsx")
def download(form_id: str, version: str) -> Response:
    """A published version as an XLSForm workbook (server/admin/xlsform_export.py)."""
    _admin()
    from server.admin.xlsform_export import xlsform_workbook

    number = int(version) if version.isascii() and version.isdigit() and len(version) < 10 else None
    form = forms_service.published_form(form_id, number) if number is not None else None
    if form is None:
        raise ApiError("not_found", f"form {form_id} version {version} is not published")
    response = Response(xlsform_workbook(form), mimetype=XLSX)
    name = f"{form.form_id}-v{form.version}.xlsx"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
