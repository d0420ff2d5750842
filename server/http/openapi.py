"""The HTTP API described as OpenAPI 3.1: ``/api/v1/openapi.json`` for tools, ``/api/v1/docs``
for people.

One table, ``ENDPOINTS``, says what each route does, what it takes (the marshmallow schemas
the views load, through apispec's MarshmallowPlugin) and which errors of CONTRACT §2 it may
answer. The views stay as they are; tests/test_openapi.py fails when a route is missing here,
and tests/test_fuzz.py drives every route from this document and holds the server to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, render_template
from marshmallow import Schema

from server import jobs
from server.auth import ROLES
from server.http.admin_api import (
    AssignmentSet,
    HouseholdCreate,
    HouseholdEdit,
    HouseholdQuery,
    PasswordReset,
    PersonCreate,
    PersonEdit,
    RegionCreate,
    RegionEdit,
    Transfer,
    UserCreate,
    UserEdit,
)
from server.http.blobs_api import IMAGE_TYPES
from server.http.errors import MESSAGES, STATUS
from server.http.notices_api import ChannelBody, DeliveryQuery
from server.http.reports_api import (
    XLSX,
    BulletinQuery,
    CoverageQuery,
    OverdueQuery,
    ProblemChange,
    ProblemQuery,
    RegionQuery,
    StatusChange,
    SubmissionsQuery,
    TrendQuery,
    VisitQuery,
)
from server.http.schemas import ConflictResolution, DeviceRegistration, PullQuery, PushEnvelope
from server.http.web import CSP
from server.notices import channels
from sync.ops import ACTIONS, MAX_SEQ
from sync.records import PROBLEM_STATUSES, RECORD_TYPES, VISIT_POLICIES

STATIC = Path(__file__).resolve().parent / "static"
JSON = "application/json"

openapi = Blueprint("openapi", __name__, url_prefix="/api/v1", template_folder="templates")

# --- the §2 error answers ---------------------------------------------------------------------

#: status → the name of its response component (the codes answered with it: errors.STATUS)
ERROR_RESPONSES = {
    400: "InvalidRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "ValidationFailed",
    426: "ClientTooOld",
    429: "RateLimited",
    503: "Unavailable",
}

ERROR_EXAMPLE = {
    "error": {
        "code": "validation_failed",
        "message": MESSAGES["validation_failed"][0],
        "details": {"fields": {"username": ["Missing data for required field."]}},
    }
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "CONTRACT §2: one shape for every error under /api/. `message` follows "
    "Accept-Language (zh-CN by default, en on request).",
    "required": ["error"],
    "examples": [ERROR_EXAMPLE],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": sorted(STATUS)},
                "message": {"type": "string", "minLength": 1},
                "details": {
                    "type": "object",
                    "description": "`fields` (field → list of messages) for validation_failed; "
                    "`max_ops` and `max_bytes` for payload_too_large; empty otherwise.",
                    "properties": {
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                        "max_ops": {"type": "integer"},
                        "max_bytes": {"type": "integer"},
                    },
                },
            },
        }
    },
}

# --- bodies the marshmallow schemas leave open ------------------------------------------------

UUID = {"type": "string", "format": "uuid"}
HLC = {"type": "string", "pattern": r"^\d{15}-[0-9a-f]{4}$", "examples": ["001763971200000-0000"]}

OP_SCHEMA = {
    "type": "object",
    "description": "One change made on a phone (CONTRACT §5). An op whose op_id or device_seq "
    "is unusable fails the whole push (422); any other problem rejects that op alone.",
    "required": ["op_id", "device_seq", "hlc", "action", "type", "id", "data"],
    "properties": {
        "op_id": UUID,
        "device_seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
        "hlc": HLC,
        "action": {"type": "string", "enum": list(ACTIONS)},
        "type": {"type": "string", "enum": sorted(RECORD_TYPES)},
        "id": {"type": "string", "minLength": 1, "maxLength": 64},
        "base_version": {"type": ["integer", "null"], "minimum": 0},
        "data": {"type": "object"},
    },
}

RECORD_SCHEMA = {
    "type": "object",
    "description": "A synced record (CONTRACT §4); `version` is the server sequence number of "
    "its last change.",
    "required": ["type", "id", "version", "deleted", "data"],
    "properties": {
        "type": {"type": "string"},
        "id": {"type": "string"},
        "version": {"type": "integer"},
        "deleted": {"type": "boolean"},
        "data": {"type": "object"},
    },
}

POLICY = {"type": "string", "enum": list(VISIT_POLICIES)}
VISIT_POLICY_SCHEMA = {
    "type": "object",
    "description": "Missing keys keep their defaults; unknown keys are refused.",
    "additionalProperties": False,
    "properties": {
        "flagged": POLICY,
        "default": POLICY,
        "categories": {
            "type": "object",
            "description": "household category → visit policy",
            "propertyNames": {"minLength": 1, "maxLength": 40},
            "additionalProperties": POLICY,
        },
    },
}

ROSTER_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": ".xlsx or .csv in the layout of samples/roster_example.csv",
        },
        "county": {"type": "string", "description": "the county the roster belongs to"},
    },
}

XLSFORM_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "an XLSForm workbook, .xlsx or .xls, as ODK and KoboToolbox read it",
        },
        "form_id": {"type": "string", "description": "the form it is a version of"},
    },
}

REGISTERED_SCHEMA = {
    "type": "object",
    "required": ["device_id", "token", "user", "server_hlc"],
    "properties": {
        "device_id": {"type": "string"},
        "token": {"type": "string", "description": "shown once: send it as a bearer token"},
        "user": {
            "type": "object",
            "required": ["id", "username", "name", "role", "region_ids"],
            "properties": {
                "id": {"type": "string"},
                "username": {"type": "string"},
                "name": {"type": "string"},
                "role": {"type": "string", "enum": list(ROLES)},
                "region_ids": {"type": "array", "items": {"type": "string"}},
            },
        },
        "server_hlc": HLC,
    },
}

PUSH_RESULT_SCHEMA = {
    "type": "object",
    "required": ["results", "next_seq", "server_hlc"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["op_id", "status"],
                "properties": {
                    "op_id": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": ["applied", "duplicate", "conflict", "rejected", "gap"],
                    },
                    "version": {"type": "integer"},
                    "error": {"type": "object"},
                },
            },
        },
        "next_seq": {"type": "integer"},
        "server_hlc": HLC,
    },
}

PULL_PAGE_SCHEMA = {
    "type": "object",
    "required": ["records", "cursor", "more"],
    "properties": {
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
        "cursor": {"type": "string", "description": "opaque and signed: send it back as is"},
        "more": {"type": "boolean"},
        "server_hlc": HLC,
        "backdate_days": {
            "type": "integer",
            "description": "how many days before the phone records it a visit may have happened",
        },
    },
}

COVERAGE_SCHEMA = {
    "type": "object",
    "required": ["period", "region", "as_of", "summary", "children", "cadres"],
    "properties": {
        "period": {"type": "string"},
        "region": {"type": "object", "required": ["id", "name", "level"]},
        "as_of": {"type": ["string", "null"]},
        "summary": {"type": "object", "required": ["due", "visited", "overdue", "coverage"]},
        "children": {"type": "array", "items": {"type": "object"}},
        "cadres": {"type": "array", "items": {"type": "object"}},
    },
}

COMPONENT_SCHEMAS = {
    "Error": ERROR_SCHEMA,
    "Op": OP_SCHEMA,
    "Record": RECORD_SCHEMA,
    "VisitPolicy": VISIT_POLICY_SCHEMA,
    "Registered": REGISTERED_SCHEMA,
    "PushResult": PUSH_RESULT_SCHEMA,
    "PullPage": PULL_PAGE_SCHEMA,
    "Coverage": COVERAGE_SCHEMA,
}

# --- parameters the views read without a schema -----------------------------------------------


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"in": "query", "name": name, "description": description, "schema": schema}


TRUTH = ["true", "false", "1", "0", "yes", "no"]
STATUSES = "|".join(PROBLEM_STATUSES)
#: what views check beyond their marshmallow schemas, said in the document too
QUERY_RULES: dict[tuple[str, str], dict[str, Any]] = {
    **{
        (path, "period"): {
            "pattern": r"^\d{4}-(W\d{2}|\d{2})$",
            "description": "an ISO week (2026-W47) or a month (2026-11)",
        }
        for path in (
            "/api/v1/reports/coverage",
            "/api/v1/reports/coverage.xlsx",
            "/api/v1/reports/coverage.csv",
            "/api/v1/reports/visits",
            "/api/v1/reports/submissions.xlsx",
        )
    },
    ("/api/v1/reports/coverage", "as_of"): {
        "format": "date-time",
        "description": "answer with what the server knew at this moment (a date alone: its "
        "local midnight)",
    },
    ("/api/v1/problems", "status"): {
        "pattern": rf"^({STATUSES})(,({STATUSES}))*$",
        "description": "one status or several, separated by commas",
    },
}
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "period": {"type": "string", "pattern": r"^\d{4}-(W\d{2}|\d{2})$"},
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "name": {"type": "string", "enum": [job.name for job in jobs.JOBS]},
    "channel": {"type": "string", "enum": list(channels.CHANNELS)},
}

# --- the table --------------------------------------------------------------------------------

Body = type[Schema] | str | None


@dataclass(frozen=True)
class Endpoint:
    """One route: ``zh`` is its label for people, ``en`` says what it does and why.

    The §2 errors that its inputs imply are added by ``_errors`` (401 signed in, 403 roles,
    404 path parameters, 400/413/422 a body, 422 query parameters); ``errors`` lists the others.
    """

    route: str  # "post /api/v1/devices"
    tag: str
    zh: str
    en: str
    errors: tuple[int, ...] = ()
    roles: tuple[str, ...] = ()  # who may call; () for every signed-in user
    query: type[Schema] | tuple[dict[str, Any], ...] | None = None
    body: Body = None
    status: int = 200
    returns: str | None = None
    media: str = JSON
    public: bool = False
    #: other success answers: (status, description)
    also: tuple[tuple[int, str], ...] = ()

    @property
    def method(self) -> str:
        return self.route.split()[0]

    @property
    def path(self) -> str:
        return self.route.split()[1]


TAGS = [
    ("devices", "设备与登录", "Devices and sign-in (CONTRACT §3)"),
    ("sync", "同步", "Push and pull (CONTRACT §5, §6, §8)"),
    ("reports", "报表", "Coverage, trend, overdue households (CONTRACT §10)"),
    ("problems", "问题清单", "The problem list and its workflow"),
    ("photos", "照片", "Photos by content (CONTRACT §11)"),
    ("admin", "管理", "Regions, households, people, users, 包保, devices, policy, forms"),
    ("jobs", "定时任务", "The scheduled jobs"),
    ("notices", "通知", "Notices to WeCom, DingTalk and e-mail, and their deliveries"),
    ("docs", "接口文档", "This document"),
]

ADMIN = ("admin",)
READERS = ("admin", "supervisor")
SUPERVISING = ("supervisor", "admin")

ENDPOINTS = [
    Endpoint(
        "post /api/v1/devices",
        "devices",
        "登录并注册设备",
        "Sign in and register this phone or browser; the token is shown once. Same 401 for an "
        "unknown user and a wrong password; failed sign-ins are rate limited.",
        (401, 429),
        body=DeviceRegistration,
        status=201,
        returns="Registered",
        public=True,
    ),
    Endpoint(
        "delete /api/v1/devices/{device_id}",
        "devices",
        "停用设备",
        "Revoke a device (an admin, or the device's own user); every later call with its "
        "token answers 401 device_revoked.",
        (403,),
    ),
    Endpoint("get /api/v1/me", "devices", "当前用户", "The caller's device, user and 包保."),
    Endpoint(
        "post /api/v1/sync/push",
        "sync",
        "上传记录",
        "Ops in device_seq order, for the caller's own device; every acknowledged op is "
        "committed before the answer. Over the limits (1000 ops or 1 MiB by default) 413: "
        "halve the batch.",
        (403,),
        body=PushEnvelope,
        returns="PushResult",
    ),
    Endpoint(
        "get /api/v1/sync/pull",
        "sync",
        "下载记录",
        "Without a cursor the device's whole scope; with one every change since, in version "
        "order; a forged cursor is 400 invalid_cursor.",
        (400, 426),
        query=PullQuery,
        returns="PullPage",
    ),
    Endpoint(
        "get /api/v1/conflicts",
        "sync",
        "冲突列表",
        "Field conflicts in the caller's scope (CONTRACT §6), each with `household_name`,"
        " `person_name`, `field_label` (zh-CN) and, per value, `user_name`, `device_label` and"
        " `at` (the write's time); values whole for admins, masked for other roles.",
        query=(_query("status", "which ones", type="string", enum=["open", "resolved", "all"]),),
    ),
    Endpoint(
        "post /api/v1/conflicts/{conflict_id}/resolve",
        "sync",
        "处理冲突",
        "Resolve a conflict with the value to keep.",
        roles=SUPERVISING,
        body=ConflictResolution,
    ),
    Endpoint(
        "get /api/v1/reports/coverage",
        "reports",
        "走访覆盖率",
        "Coverage of a region in an ISO week or a month; as_of answers with what the server "
        "knew then (on a reports replica: when it last replayed a commit). A cadre sees their "
        "own households. A province's coverage is its counties' weekly snapshots (ISO weeks "
        "only): children are its counties, `missing` those without a snapshot.",
        (403, 404),
        query=CoverageQuery,
        returns="Coverage",
    ),
    Endpoint(
        "get /api/v1/reports/trend",
        "reports",
        "覆盖率趋势",
        "Weekly coverage of a region over the last weeks (a province's: from its counties' "
        "snapshots).",
        (403, 404),
        query=TrendQuery,
    ),
    Endpoint(
        "get /api/v1/reports/overdue",
        "reports",
        "逾期未访户",
        "Households past due, most overdue first.",
        (403, 404),
        query=OverdueQuery,
    ),
    Endpoint(
        "get /api/v1/reports/coverage.xlsx",
        "reports",
        "周报 Excel",
        "The weekly bulletin as a formatted Excel sheet.",
        (404,),
        roles=SUPERVISING,
        query=BulletinQuery,
        media=XLSX,
    ),
    Endpoint(
        "get /api/v1/reports/coverage.csv",
        "reports",
        "周报 CSV",
        "The weekly bulletin as CSV (UTF-8).",
        (404,),
        roles=SUPERVISING,
        query=BulletinQuery,
        media="text/csv",
    ),
    Endpoint(
        "get /api/v1/reports/bulletins",
        "reports",
        "往期通报",
        "The weekly bulletins the Monday job kept for a county or township, newest first, and "
        "whether each one's Excel file is there to download.",
        (404,),
        roles=SUPERVISING,
        query=RegionQuery,
    ),
    Endpoint(
        "get /api/v1/reports/bulletins/{period}.xlsx",
        "reports",
        "下载往期通报",
        "The Excel file of a kept bulletin as it went out; 404 when none was kept.",
        (404,),
        roles=SUPERVISING,
        query=RegionQuery,
        media=XLSX,
    ),
    Endpoint(
        "get /api/v1/reports/visits",
        "reports",
        "走访记录",
        "Every visit of the period in the region and the caller's scope (a cadre: their own "
        "villages and 包保 households), newest first, with filters; paged by an opaque signed "
        "cursor (a forged one is 400 invalid_cursor). late: arrived after its week's bulletin. "
        "ID and phone numbers in answers are masked but for admins.",
        (400, 403, 404),
        query=VisitQuery,
    ),
    Endpoint(
        "get /api/v1/reports/visits/{visit_id}",
        "reports",
        "走访详情",
        "One visit in the caller's scope: every answer under its label, people seen by name, "
        "photos (stored or pending), its corrections and its void with who and when.",
    ),
    Endpoint(
        "get /api/v1/reports/households/{household_id}",
        "reports",
        "户档案",
        "One household in the caller's scope over time: people, latest visits, problems and "
        "help measures.",
    ),
    Endpoint(
        "get /api/v1/reports/submissions.xlsx",
        "reports",
        "表单数据 Excel",
        "The visits of one form in the period and region: one row per visit, one column per "
        "question of every version used (headed by its zh-CN label), repeated groups on a "
        "sheet of their own keyed by visit id; personal numbers masked.",
        (404,),
        roles=SUPERVISING,
        query=SubmissionsQuery,
        media=XLSX,
    ),
    Endpoint(
        "get /api/v1/problems",
        "problems",
        "问题清单",
        "Problems in the caller's scope, filtered.",
        (404,),
        query=ProblemQuery,
    ),
    Endpoint(
        "get /api/v1/problems/{problem_id}",
        "problems",
        "问题详情",
        "One problem with its household.",
    ),
    Endpoint(
        "post /api/v1/problems/{problem_id}",
        "problems",
        "修改问题",
        "Change a problem's due date, assignee or note.",
        (403, 409),
        body=ProblemChange,
    ),
    Endpoint(
        "post /api/v1/problems/{problem_id}/status",
        "problems",
        "问题状态",
        "Move a problem along open → in_progress → resolved → verified.",
        (403, 409),
        body=StatusChange,
    ),
    Endpoint(
        "get /api/v1/problems/{problem_id}/history",
        "problems",
        "问题历程",
        "Every change of a problem, oldest first.",
    ),
    Endpoint(
        "put /api/v1/blobs/{sha256}",
        "photos",
        "上传照片",
        "Store a photo under the SHA-256 of its bytes; 422 if the bytes do not hash to the "
        "name, 413 over 2 MiB, 429 over the device's upload budget (Retry-After).",
        (429,),
        body="image",
        status=201,
        also=((200, "stored before: nothing changed"),),
    ),
    Endpoint(
        "head /api/v1/blobs/{sha256}",
        "photos",
        "照片是否已上传",
        "200 if the photo is stored, 404 if not.",
        media="",
    ),
    Endpoint(
        "get /api/v1/blobs/{sha256}",
        "photos",
        "下载照片",
        "The photo, to anyone whose scope holds a visit that refers to it. Where photos are "
        "in object storage (BLOB_STORE=s3://…), a 307 to a URL of the bucket signed for "
        "BLOB_URL_SECONDS (default 300) instead: the client fetches the bytes there.",
        media="image/*",
        also=((307, "in object storage: Location is a short-lived signed URL of the photo"),),
    ),
    Endpoint(
        "get /api/v1/admin/regions",
        "admin",
        "行政区划",
        "The region tree the caller may see.",
        roles=READERS,
    ),
    Endpoint(
        "post /api/v1/admin/regions",
        "admin",
        "新建区划",
        "A township under a county or a village under a township, within the admin's regions; "
        "a county only by an admin of every county.",
        (409,),
        roles=ADMIN,
        body=RegionCreate,
        status=201,
    ),
    Endpoint(
        "patch /api/v1/admin/regions/{region_id}",
        "admin",
        "修改区划",
        "Rename a region or change its code; phones pull the new version.",
        (409,),
        roles=ADMIN,
        body=RegionEdit,
    ),
    Endpoint(
        "get /api/v1/admin/households",
        "admin",
        "户列表",
        "Households by head's name or code, region, status and category, a page at a time; "
        "phone numbers masked.",
        roles=READERS,
        query=HouseholdQuery,
    ),
    Endpoint(
        "post /api/v1/admin/households",
        "admin",
        "新建户",
        "A household in a village; its visit policy follows the category unless given.",
        (409,),
        roles=ADMIN,
        body=HouseholdCreate,
        status=201,
    ),
    Endpoint(
        "get /api/v1/admin/households/{household_id}",
        "admin",
        "户详情",
        "A household and its people.",
        roles=READERS,
    ),
    Endpoint(
        "patch /api/v1/admin/households/{household_id}",
        "admin",
        "修改户",
        "Change a household's fields, through the sync engine.",
        roles=ADMIN,
        body=HouseholdEdit,
    ),
    Endpoint(
        "post /api/v1/admin/households/{household_id}/archive",
        "admin",
        "归档户",
        "Archived households are no longer due; their visits and problems stay.",
        (422,),
        roles=ADMIN,
    ),
    Endpoint(
        "post /api/v1/admin/households/{household_id}/people",
        "admin",
        "添加人员",
        "A person in a household; an ID number once per household.",
        (409,),
        roles=ADMIN,
        body=PersonCreate,
        status=201,
    ),
    Endpoint(
        "patch /api/v1/admin/people/{person_id}",
        "admin",
        "修改人员",
        "Change a person's fields, through the sync engine.",
        (409,),
        roles=ADMIN,
        body=PersonEdit,
    ),
    Endpoint(
        "post /api/v1/admin/roster",
        "admin",
        "导入花名册",
        "Import a roster, all rows or none; dry_run checks and counts without writing. Every "
        "bad row is in details.errors. A file that unzips beyond the upload limits is 413, one "
        "with too many rows, columns or cells or too long a cell 422 (docs/admin.md).",
        roles=ADMIN,
        query=(
            _query("dry_run", "check only", type="string", enum=TRUTH),
            _query("county", "the county, when not in the form", type="string"),
        ),
        body="roster",
    ),
    Endpoint(
        "get /api/v1/admin/users",
        "admin",
        "用户列表",
        "Every user with their 包保 and device count; phone numbers masked.",
        roles=ADMIN,
        query=(
            _query("role", "only this role", type="string", enum=list(ROLES)),
            _query("active", "only active (true) or deactivated (false)", type="string"),
            _query("q", "part of the username or name", type="string"),
        ),
    ),
    Endpoint(
        "post /api/v1/admin/users",
        "admin",
        "新建用户",
        "A user scoped to regions and households, within the admin's own.",
        roles=ADMIN,
        body=UserCreate,
        status=201,
    ),
    Endpoint(
        "get /api/v1/admin/users/{user_id}",
        "admin",
        "用户详情",
        "A user with their devices.",
        roles=ADMIN,
    ),
    Endpoint(
        "patch /api/v1/admin/users/{user_id}",
        "admin",
        "修改用户",
        "Name, phone or role; an admin cannot take their own admin role away.",
        (409,),
        roles=ADMIN,
        body=UserEdit,
    ),
    Endpoint(
        "post /api/v1/admin/users/{user_id}/deactivate",
        "admin",
        "停用用户",
        "The user can sign in no more and every device of theirs is revoked.",
        (409,),
        roles=ADMIN,
    ),
    Endpoint(
        "post /api/v1/admin/users/{user_id}/activate",
        "admin",
        "启用用户",
        "Let a deactivated user sign in again.",
        roles=ADMIN,
    ),
    Endpoint(
        "post /api/v1/admin/users/{user_id}/password",
        "admin",
        "重置密码",
        "A new password (refused when short, common or easy to guess: 422 with "
        "details.fields.password); failed sign-ins are forgiven, and every device of the user "
        "is revoked unless sign_out is false.",
        roles=ADMIN,
        body=PasswordReset,
    ),
    Endpoint(
        "post /api/v1/admin/users/{user_id}/sign-out",
        "admin",
        "退出所有设备",
        "Revoke every device of the user (but the caller's own): each answers 401 "
        "device_revoked, and the user signs in again.",
        roles=ADMIN,
    ),
    Endpoint(
        "put /api/v1/admin/users/{user_id}/assignment",
        "admin",
        "设置包保",
        "The regions and households a user covers; their devices receive what enters and a "
        "delete for what leaves on the next pull.",
        roles=ADMIN,
        body=AssignmentSet,
    ),
    Endpoint(
        "post /api/v1/admin/assignments/transfer",
        "admin",
        "移交包保",
        "Everything from_user covers moves to to_user (when a cadre leaves).",
        (404,),
        roles=ADMIN,
        body=Transfer,
    ),
    Endpoint(
        "get /api/v1/admin/devices",
        "admin",
        "设备列表",
        "Every registered device, last seen first.",
        roles=ADMIN,
        query=(_query("user_id", "only this user's devices", type="string"),),
    ),
    Endpoint(
        "post /api/v1/admin/devices/{device_id}/revoke",
        "admin",
        "停用设备（管理）",
        "A lost phone: every later call with its token answers 401 device_revoked.",
        roles=ADMIN,
    ),
    Endpoint(
        "get /api/v1/admin/visit-policy",
        "admin",
        "走访频次",
        "The visit policy in force and the household categories with their counts.",
        roles=ADMIN,
    ),
    Endpoint(
        "put /api/v1/admin/visit-policy",
        "admin",
        "设置走访频次",
        "Replace the visit policy; every active household's visit_policy is derived anew in "
        "the same transaction. Server-wide: an admin of every county only.",
        roles=ADMIN,
        body="VisitPolicy",
    ),
    Endpoint(
        "get /api/v1/admin/forms",
        "admin",
        "表单版本",
        "The published form versions (CONTRACT §9), each with its field count as "
        "zoufang forms list --json counts it.",
        roles=ADMIN,
    ),
    Endpoint(
        "post /api/v1/admin/forms/preview",
        "admin",
        "预览表单",
        "Check an uploaded XLSForm and answer the form version it would be published as "
        "(the form record's data, for the preview), or unchanged; stores nothing. Every "
        "problem is in details.problems by sheet, row and column.",
        roles=ADMIN,
        body="xlsform",
    ),
    Endpoint(
        "post /api/v1/admin/forms",
        "admin",
        "发布表单",
        "Publish an uploaded XLSForm as the next version of its form, as zoufang forms "
        "import-xlsform does; 200 unchanged when it is identical to the latest version. "
        "Server-wide: an admin of every county only.",
        roles=ADMIN,
        body="xlsform",
        status=201,
        also=((200, "与最新版本相同，未发布 · Identical to the latest version, not published"),),
    ),
    Endpoint(
        "get /api/v1/admin/forms/{form_id}/{version}.xlsx",
        "admin",
        "下载表单",
        "A published form version as an XLSForm workbook (forms/README.md).",
        (404,),
        roles=ADMIN,
        media=XLSX,
    ),
    Endpoint(
        "get /api/v1/admin/jobs",
        "jobs",
        "定时任务",
        "Every job with its schedule, last run and next run.",
        roles=READERS,
    ),
    Endpoint(
        "post /api/v1/admin/jobs/{name}/run",
        "jobs",
        "立即运行任务",
        "Run a job now, in this request; 409 while it runs elsewhere. An admin of every "
        "county only.",
        (409,),
        roles=ADMIN,
    ),
    Endpoint(
        "get /api/v1/admin/regions/{region_id}/notices",
        "notices",
        "通知渠道",
        "The region's WeCom robot, DingTalk robot and e-mail recipients; webhook URLs are "
        "masked and secrets are never shown (secret_set says whether one is kept).",
        roles=ADMIN,
    ),
    Endpoint(
        "put /api/v1/admin/regions/{region_id}/notices/{channel}",
        "notices",
        "设置通知渠道",
        "Create or change one channel of a county or township; a field left out keeps its "
        "stored value. The webhook must be http(s); e-mail needs ZOUFANG_SMTP_HOST.",
        roles=ADMIN,
        body=ChannelBody,
    ),
    Endpoint(
        "delete /api/v1/admin/regions/{region_id}/notices/{channel}",
        "notices",
        "删除通知渠道",
        "The region stops receiving notices on this channel; its deliveries stay recorded.",
        roles=ADMIN,
    ),
    Endpoint(
        "get /api/v1/admin/notices/deliveries",
        "notices",
        "通知发送记录",
        "The newest deliveries of the caller's regions: sent, queued, retrying (with the next "
        "attempt) or failed, with attempts and the last error; a region outside the caller's "
        "is 404.",
        (404,),
        roles=READERS,
        query=DeliveryQuery,
    ),
    Endpoint("get /api/v1/openapi.json", "docs", "接口描述", "This document.", public=True),
    Endpoint(
        "get /api/v1/docs",
        "docs",
        "接口文档页面",
        "This document as a page for people.",
        media="text/html",
        public=True,
    ),
    Endpoint(
        "get /api/v1/docs.css",
        "docs",
        "文档样式",
        "The style sheet of that page.",
        media="text/css",
        public=True,
    ),
]


# --- the document -----------------------------------------------------------------------------


def _request_body(body: Body) -> dict[str, Any]:
    if body == "image":
        binary = {"schema": {"type": "string", "format": "binary"}}
        return {"required": True, "content": {kind: binary for kind in IMAGE_TYPES}}
    if body == "roster":
        return {"required": True, "content": {"multipart/form-data": {"schema": ROSTER_FORM}}}
    if body == "xlsform":
        return {"required": True, "content": {"multipart/form-data": {"schema": XLSFORM_FORM}}}
    schema: Any = {"$ref": f"#/components/schemas/{body}"} if isinstance(body, str) else body
    return {"required": True, "content": {JSON: {"schema": schema}}}


SUCCESS = {200: "成功 · OK", 201: "已创建 · Created"}


def _success(endpoint: Endpoint) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": SUCCESS[endpoint.status]}
    if endpoint.returns:
        schema: dict[str, Any] = {"$ref": f"#/components/schemas/{endpoint.returns}"}
    elif endpoint.media == JSON:
        schema = {"type": "object"}
    else:
        schema = {"type": "string"}
    if endpoint.media:
        answer["content"] = {endpoint.media: {"schema": schema}}
    return answer


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": PATH_PARAMETERS.get(name, {"type": "string", "minLength": 1}),
        }
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if isinstance(endpoint.query, tuple):
        parameters.extend(endpoint.query)
    elif endpoint.query is not None:
        parameters.append({"in": "query", "schema": endpoint.query})
    responses: dict[str, Any] = {str(endpoint.status): _success(endpoint)}
    for status, description in endpoint.also:
        responses[str(status)] = {**_success(endpoint), "description": description}
    for status in _errors(endpoint):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status]}"}
    operation: dict[str, Any] = {
        "operationId": endpoint.method + re.sub(r"\W+", "_", endpoint.path[len("/api/v1") :]),
        "tags": [endpoint.tag],
        "summary": endpoint.zh,
        "description": endpoint.en,
        "parameters": parameters,
        "responses": responses,
    }
    if endpoint.body is not None:
        operation["requestBody"] = _request_body(endpoint.body)
    if endpoint.public:
        operation["security"] = []
    if endpoint.roles:
        operation["x-roles"] = list(endpoint.roles)
    return operation


def _errors(endpoint: Endpoint) -> list[int]:
    """The §2 statuses an endpoint may answer: what its inputs imply, its own, and 503 (the
    database briefly away) for all."""
    implied = {503}
    if not endpoint.public:
        implied.add(401)
    if endpoint.roles:
        implied.add(403)
    if "{" in endpoint.path:
        implied.add(404)
    if endpoint.body is not None:
        implied |= {400, 413, 422}
    if endpoint.query is not None:
        implied.add(422)
    return sorted(implied | set(endpoint.errors))


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the whole API, built once per process."""
    spec = APISpec(
        title="走访 Zoufang API",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "The sync server of 走访 (household visits): devices sign in, push "
            "what phones recorded and pull what they may see; supervisors read reports and "
            "work the problem list; admins keep the roster and the users.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        tags=[{"name": name, "description": f"{zh} · {en}"} for name, zh, en in TAGS],
        security=[{"bearer": []}],
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "The token POST /api/v1/devices returned: "
            "`Authorization: Bearer <token>`.",
        },
    )
    for name, schema in COMPONENT_SCHEMAS.items():
        spec.components.schema(name, schema)
    for status, name in ERROR_RESPONSES.items():
        codes = [code for code, answered in STATUS.items() if answered == status]
        spec.components.response(
            name,
            {
                "description": " / ".join(f"{code} {MESSAGES[code][0]}" for code in codes),
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    for endpoint in ENDPOINTS:
        spec.path(path=endpoint.path, operations={endpoint.method: _operation(endpoint)})
    out = spec.to_dict()
    # what PushEnvelope leaves to sync.ops (the ops, op by op) and to a validator (the time)
    envelope = out["components"]["schemas"]["PushEnvelope"]["properties"]
    envelope["ops"] = {"type": "array", "items": {"$ref": "#/components/schemas/Op"}}
    envelope["device_time"]["format"] = "date-time"
    for path, operations in out["paths"].items():
        for operation in operations.values():
            for parameter in operation["parameters"]:
                _not_null(parameter)
                rule = dict(QUERY_RULES.get((path, parameter["name"]), {}))
                if "description" in rule:
                    parameter["description"] = rule.pop("description")
                parameter["schema"].update(rule)
    return json.loads(json.dumps(out))  # plain JSON types only (no tuples, no lazy strings)


def _not_null(parameter: dict[str, Any]) -> None:
    """A query string has no null: a marshmallow ``load_default=None`` means "may be left out"."""
    schema = parameter["schema"]
    if isinstance(schema.get("type"), list):
        kinds = [kind for kind in schema["type"] if kind != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "default" in schema and schema["default"] is None:
        del schema["default"]


@openapi.get("/openapi.json")
def openapi_json() -> Response:
    return Response(json.dumps(document(), ensure_ascii=False), mimetype=JSON)


# --- the page for people ----------------------------------------------------------------------


def describe(schema: dict[str, Any]) -> str:
    """A schema in a few words: ``string, 1–64 chars``, ``one of: a, b``, ``list of string``."""
    schema = _resolved(schema)
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(describe(part) for part in schema["anyOf"])
    kind = schema.get("type", "any JSON")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if schema.get("format") == "binary":
        kind = "file"
    if "items" in schema:
        kind = f"list of {describe(schema['items'])}"
    limits = []
    if "minLength" in schema or "maxLength" in schema:
        limits.append(f"{schema.get('minLength', 0)}–{schema.get('maxLength', '')} chars")
    if "minimum" in schema or "maximum" in schema:
        limits.append(f"{schema.get('minimum', '')}–{schema.get('maximum', '')}")
    if "pattern" in schema:
        limits.append(f"matches {schema['pattern']}")
    if "default" in schema:
        limits.append(f"default {json.dumps(schema['default'], ensure_ascii=False)}")
    return ", ".join([kind, *limits])


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        schema = document()["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolved(schema)
    required = set(schema.get("required", []))
    return [
        {"name": name, "required": name in required, "type": describe(value)}
        for name, value in schema.get("properties", {}).items()
    ]


ROLE_LABELS = {"cadre": "干部", "supervisor": "督导", "admin": "管理员"}


def page_model() -> list[dict[str, Any]]:
    """The document grouped by tag, each operation in the words the template shows."""
    doc = document()
    groups = {tag["name"]: {"label": tag["description"], "operations": []} for tag in doc["tags"]}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {})
            groups[operation["tags"][0]]["operations"].append(
                {
                    "id": operation["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": operation["summary"],
                    "description": operation["description"],
                    "signed_in": operation.get("security") != [],
                    "roles": [ROLE_LABELS[role] for role in operation.get("x-roles", [])],
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": describe(p["schema"]),
                            "description": p.get("description", ""),
                        }
                        for p in operation["parameters"]
                    ],
                    "body": [
                        {"media": media, "fields": _fields(content["schema"])}
                        for media, content in body.items()
                    ],
                    "responses": [
                        (status, _response_text(answer))
                        for status, answer in operation["responses"].items()
                    ],
                }
            )
    return list(groups.values())


def _response_text(answer: dict[str, Any]) -> str:
    ref = answer.get("$ref")
    if ref:
        answer = document()["components"]["responses"][ref.rsplit("/", 1)[-1]]
    return str(answer["description"])


@openapi.get("/docs")
def docs_page() -> Response:
    """The document as one server-rendered page: no script, no inline style (the CSP)."""
    html = render_template(
        "api_docs.html",
        info=document()["info"],
        groups=page_model(),
        error_example=json.dumps(ERROR_EXAMPLE, ensure_ascii=False),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP  # the pages' policy: its own style sheet
    return response


@openapi.get("/docs.css")
def docs_css() -> Response:
    return Response((STATIC / "api-docs.css").read_text(encoding="utf-8"), mimetype="text/css")
