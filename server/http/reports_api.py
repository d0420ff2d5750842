"""Supervisor endpoints under /api/v1: coverage, overdue households, the weekly bulletin as
Excel and CSV, and the problem list with its workflow. Thin views over server.reports and
server.reports.exports; what each figure means is in docs/reports.md."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from server import service
from server.auth import current_caller, require_role
from server.http.api import json_body
from server.http.schemas import load
from server.reports import bulletins, exports, problems, province, visits
from server.reports import coverage as reports
from sync.records import MAX_TEXT, PROBLEM_STATUSES

reports_api = Blueprint("reports", __name__, url_prefix="/api/v1")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ID = validate.Length(1, 64)


class CoverageQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    period = fields.String(required=True, validate=validate.Length(1, 10))
    region_id = fields.String(required=True, validate=ID)
    as_of = fields.String(load_default=None, validate=validate.Length(1, 40))


class BulletinQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    period = fields.String(required=True, validate=validate.Length(1, 10))
    region_id = fields.String(required=True, validate=ID)


class RegionQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    region_id = fields.String(required=True, validate=ID)


class TrendQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    region_id = fields.String(required=True, validate=ID)
    weeks = fields.Integer(load_default=12, validate=validate.Range(1, 260))
    until = fields.String(load_default=None, validate=validate.Length(1, 10))


class VisitQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    period = fields.String(required=True, validate=validate.Length(1, 10))
    region_id = fields.String(required=True, validate=ID)
    cadre_id = fields.String(load_default=None, validate=ID)
    household_id = fields.String(load_default=None, validate=ID)
    form_id = fields.String(load_default=None, validate=ID)
    late = fields.Boolean(load_default=None, allow_none=True)
    limit = fields.Integer(
        load_default=visits.DEFAULT_LIMIT, validate=validate.Range(1, visits.MAX_LIMIT)
    )
    cursor = fields.String(load_default=None, validate=validate.Length(1, 1024))


class SubmissionsQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    form_id = fields.String(required=True, validate=ID)
    period = fields.String(required=True, validate=validate.Length(1, 10))
    region_id = fields.String(required=True, validate=ID)


class OverdueQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    region_id = fields.String(required=True, validate=ID)
    cadre_id = fields.String(load_default=None, validate=ID)


class ProblemQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    region_id = fields.String(load_default=None, validate=ID)
    category = fields.String(load_default=None, validate=validate.Length(1, 40))
    status = fields.String(load_default=None, validate=validate.Length(1, 100))
    assignee_id = fields.String(load_default=None, validate=ID)
    overdue = fields.Boolean(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 5000))


class StatusChange(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(required=True, validate=validate.OneOf(PROBLEM_STATUSES))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, MAX_TEXT))
    resolution = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(0, MAX_TEXT)
    )


class ProblemChange(Schema):
    class Meta:
        unknown = RAISE

    due_date = fields.Date(allow_none=True)
    assignee_id = fields.String(allow_none=True, validate=ID)
    note = fields.String(allow_none=True, validate=validate.Length(0, MAX_TEXT))


@reports_api.get("/reports/coverage")
def coverage() -> Response:
    caller = current_caller()
    query = load(CoverageQuery(), request.args.to_dict())
    scope = reports.report_scope(caller, query["region_id"])
    if province.is_province(query["region_id"]):  # its counties' snapshots, not visits
        body = province.coverage(query["period"], query["region_id"], query["as_of"], scope)
        return jsonify(body)
    body = reports.coverage(query["period"], query["region_id"], query["as_of"], scope=scope)
    if caller.role == "cadre":
        body["cadres"] = [c for c in body["cadres"] if c["user_id"] == caller.user_id]
    return jsonify(body)


@reports_api.get("/reports/trend")
def trend() -> Response:
    caller = current_caller()
    query = load(TrendQuery(), request.args.to_dict())
    scope = reports.report_scope(caller, query["region_id"])
    if province.is_province(query["region_id"]):
        periods = reports.trend_weeks(query["weeks"], query["until"], reports.zone_of(None))
        weeks = province.trend(query["region_id"], periods, scope)
        return jsonify({"region_id": query["region_id"], "weeks": weeks})
    weeks = reports.trend(query["region_id"], query["weeks"], query["until"], scope=scope)
    return jsonify({"region_id": query["region_id"], "weeks": weeks})


@reports_api.get("/reports/overdue")
def overdue() -> Response:
    caller = current_caller()
    query = load(OverdueQuery(), request.args.to_dict())
    scope = reports.report_scope(caller, query["region_id"])
    households = reports.overdue(query["region_id"], cadre_id=query["cadre_id"], scope=scope)
    return jsonify({"region_id": query["region_id"], "households": households})


@reports_api.get("/reports/visits")
def visit_list() -> Response:
    caller = current_caller()
    query = load(VisitQuery(), request.args.to_dict())
    scope = reports.report_scope(caller, query["region_id"])
    limit, cursor = query.pop("limit"), query.pop("cursor")
    chosen = visits.VisitFilter(**query)
    body = visits.visit_list(chosen, scope, caller.role, caller.user_id, limit, cursor)
    return jsonify(body)


@reports_api.get("/reports/visits/<visit_id>")
def visit_detail(visit_id: str) -> Response:
    caller = current_caller()
    scope = service.scope_of(caller.assignment)
    return jsonify(visits.visit_detail(visit_id, scope, caller.role))


@reports_api.get("/reports/households/<household_id>")
def household_detail(household_id: str) -> Response:
    caller = current_caller()
    scope = service.scope_of(caller.assignment)
    return jsonify(visits.household_detail(household_id, scope, caller.role))


@reports_api.get("/reports/submissions.xlsx")
def submissions_xlsx() -> Response:
    """The visits of one form as a workbook, sent from its temporary file in chunks."""
    caller = current_caller()
    require_role(caller, *reports.SUPERVISING_ROLES)
    query = load(SubmissionsQuery(), request.args.to_dict())
    scope = reports.report_scope(caller, query["region_id"])
    content = visits.submissions_xlsx(visits.VisitFilter(**query), scope)
    response = Response(_chunks(content), mimetype=XLSX)
    form = re.sub(r"[^A-Za-z0-9_-]", "_", query["form_id"])
    name = f"zoufang-{form}-{query['period']}.xlsx"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _chunks(content: Any) -> Any:
    with content:
        while chunk := content.read(64 * 1024):
            yield chunk


def _bulletin_query() -> dict[str, Any]:
    """The bulletin's period and region, for a supervisor or admin whose assignment holds it."""
    caller = current_caller()
    require_role(caller, *reports.SUPERVISING_ROLES)
    query = load(BulletinQuery(), request.args.to_dict())
    reports.report_scope(caller, query["region_id"])
    return query


@reports_api.get("/reports/coverage.xlsx")
def coverage_xlsx() -> Response:
    query = _bulletin_query()
    content = exports.weekly_bulletin_xlsx(query["period"], query["region_id"])
    return _download(content, XLSX, f"zoufang-{query['period']}.xlsx")


@reports_api.get("/reports/coverage.csv")
def coverage_csv() -> Response:
    query = _bulletin_query()
    content = exports.weekly_bulletin_csv(query["period"], query["region_id"]).encode("utf-8")
    return _download(content, "text/csv; charset=utf-8", f"zoufang-{query['period']}.csv")


def _supervised_region() -> str:
    """The region of a bulletin list or kept file, for a supervisor or admin whose assignment
    holds it (the same rule as the bulletin itself)."""
    caller = current_caller()
    require_role(caller, *reports.SUPERVISING_ROLES)
    region_id: str = load(RegionQuery(), request.args.to_dict())["region_id"]
    reports.report_scope(caller, region_id)
    return region_id


@reports_api.get("/reports/bulletins")
def bulletin_list() -> Response:
    region_id = _supervised_region()
    return jsonify({"region_id": region_id, "bulletins": bulletins.kept(region_id)})


@reports_api.get("/reports/bulletins/<period>.xlsx")
def bulletin_file(period: str) -> Response:
    path = bulletins.kept_file(period, _supervised_region())
    return _download(path.read_bytes(), XLSX, path.name)  # a bulletin is some 10 to 100 kB


def _download(content: bytes, mimetype: str, filename: str) -> Response:
    response = Response(content, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@reports_api.get("/problems")
def problem_list() -> Response:
    caller = current_caller()
    query = load(ProblemQuery(), request.args.to_dict())
    if query["status"]:
        statuses = [s.strip() for s in query["status"].split(",") if s.strip()]
        unknown = sorted(set(statuses) - set(PROBLEM_STATUSES))
        if unknown:
            raise reports.invalid("status", "one or more of " + ", ".join(PROBLEM_STATUSES))
        query["status"] = statuses
    scope = service.scope_of(caller.assignment)
    items = problems.problem_list(scope, query)
    return jsonify({"problems": items, "count": len(items)})


@reports_api.get("/problems/<problem_id>")
def problem(problem_id: str) -> Response:
    caller = current_caller()
    return jsonify(problems.problem_detail(service.scope_of(caller.assignment), problem_id))


@reports_api.post("/problems/<problem_id>/status")
def problem_status(problem_id: str) -> Response:
    caller = current_caller()
    body = load(StatusChange(), json_body(64 * 1024))
    return jsonify(
        problems.change_problem_status(
            caller, problem_id, body["status"], body["note"], body["resolution"]
        )
    )


@reports_api.post("/problems/<problem_id>")
def problem_update(problem_id: str) -> Response:
    caller = current_caller()
    body = load(ProblemChange(), json_body(64 * 1024))
    if body.get("due_date") is not None:
        body["due_date"] = body["due_date"].isoformat()
    return jsonify(problems.update_problem(caller, problem_id, body))


@reports_api.get("/problems/<problem_id>/history")
def problem_history(problem_id: str) -> Response:
    caller = current_caller()
    entries = problems.problem_history(service.scope_of(caller.assignment), problem_id)
    return jsonify({"problem_id": problem_id, "history": entries})
