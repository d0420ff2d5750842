"""Who may do what (issue 7): every endpoint under /api/ × every kind of caller, in and out
of the caller's scope, answered with the status CONTRACT §2-§3, docs/admin.md, docs/reports.md
and docs/jobs.md give. A new endpoint without a row in MATRIX fails
``test_every_api_endpoint_has_a_row_in_the_matrix``.

The callers, on the small county of tests/county.py plus a second county (白水县 → 南镇 → 南村,
household h6, cadre_s), so that a county supervisor and the county's admin have something
outside their county (an admin administers their own regions only, and only an admin of every
county changes server-wide settings: tests/test_admin_scope.py):

| caller    | calls with a device of                   | household in / out | region in / out |
|-----------|------------------------------------------|--------------------|-----------------|
| cadre     | cadre_a (上村)                            | h1 / h4 (cadre_c)  | 上村 / 下村     |
| township  | sup_east (东河镇)                          | h1 / h5 (西岭镇)    | 东河镇 / 西岭镇 |
| county    | sup_county (青山县)                        | h1 / h6 (白水县)    | 青山县 / 白水县 |
| admin     | admin (青山县)                             | h1 / h6            | 青山县 / 白水县 |
| revoked   | cadre_a, revoked by the admin            | as cadre           | as cadre        |
| expired   | cadre_a, unused for TOKEN_TTL_DAYS + 1   | as cadre           | as cadre        |
| anonymous | nobody: no Authorization header          | as cadre           | as cadre        |

A cell of the matrix is "in/out", or one value for both:

    200 201           that status
    403 404           that status with the error shape of CONTRACT §2 (forbidden, not_found)
    401 revoked       401 with the error shape: unauthorized, device_revoked
    listed unlisted   200, and the record filled in is (is not) in the answer
    applied rejected  200, and the pushed op is applied (rejected with forbidden)

The revoked, expired and anonymous columns are "revoked", "401" and "401" in every row but
sign-in and the API's own description, which need no token. What a row changes (problems,
conflicts, users, devices, the households it archives) is made fresh for each call, so that
the rows are independent.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server import jobs
from server.admin.accounts import create_user
from server.admin.forms_service import publish_next_version
from server.admin.roster import EVERYTHING
from server.auth import TOKEN_TTL_DAYS
from server.notices.queue import save_channel
from server.service import create_server_records, server_update
from server.storage.db import db
from server.storage.models import AuditEntry, Conflict, Household
from sync.scope import Assignment, expand
from tests.conftest import migrated_app
from tests.county import PASSWORD, County, Device, build_county, uid
from tests.test_blobs import PHOTO_FORM

PERIOD = "2026-W47"
SAMPLES = Path(__file__).parent / "samples"

# --- the world: two counties, the callers, and how a row's placeholders are filled -----------

HOME = {  # caller → (household in, household out, region in, region out)
    "cadre": ("h1", "h4", "upper", "lower"),
    "township": ("h1", "h5", "east", "west"),
    "county": ("h1", "h6", "county", "county2"),
    "admin": ("h1", "h6", "county", "county2"),
}
VILLAGE_OF = {"h1": "upper", "h4": "lower", "h5": "ridge", "h6": "south_village"}
TOWNSHIP_OF = {"upper": "east", "lower": "east", "ridge": "west", "south_village": "south"}
COUNTY_OF = {"east": "青山县", "west": "青山县", "south": "白水县"}
USERNAME = {"cadre": "cadre_a", "township": "sup_east", "county": "sup_county", "admin": "admin"}
CALLERS = ("cadre", "township", "county", "admin", "revoked", "expired", "anonymous")


@dataclass
class World:
    county: County
    devices: dict[str, Device]  # caller → the device whose token it sends
    helper: Device  # a cadre with every household by 包保: makes problems, conflicts, photos
    photos: dict[str, str] = field(default_factory=dict)  # household key → sha256
    bulletins: set[str] = field(default_factory=set)  # periods the Monday job has kept

    @property
    def app(self) -> Any:
        return self.county.app

    def keys(self, caller: str, where: str) -> tuple[str, str]:
        """The household and region keys of ``caller`` in or out of their scope."""
        home = HOME.get(caller, HOME["cadre"])
        return (home[0], home[2]) if where == "in" else (home[1], home[3])

    def username(self, caller: str) -> str:
        return USERNAME.get(caller, "cadre_a")


@pytest.fixture(scope="module")
def world(sqlite_template: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("authz")
    shutil.copy(sqlite_template, folder / "zoufang.db")
    app = migrated_app(f"sqlite:///{folder / 'zoufang.db'}", folder)
    county = build_county(app)
    r, h = county.regions, county.households
    r.update(county2=uid(), south=uid(), south_village=uid())
    h["h6"] = uid()
    with app.app_context():
        create_server_records(
            [
                ("region", r["county2"], region(None, "county", "白水县")),
                ("region", r["south"], region(r["county2"], "township", "南镇")),
                ("region", r["south_village"], region(r["south"], "village", "南村")),
                ("household", h["h6"], household(r["south_village"], "341824101001006")),
            ],
            actor=None,
        )
        create_user("sup_county", PASSWORD, "supervisor", [r["county"]], [], "县督导")
        create_user("cadre_s", PASSWORD, "cadre", [r["south_village"]], [], "南村干部")
        create_user("helper", PASSWORD, "cadre", [], list(h.values()), "助手")
        publish_next_version(PHOTO_FORM, actor=None)
    devices = {caller: county.device(name) for caller, name in USERNAME.items()}
    devices["revoked"] = county.device("cadre_a", "lost phone")
    revoke = devices["admin"].client.delete(
        f"/api/v1/devices/{devices['revoked'].device_id}", headers=devices["admin"].headers
    )
    assert revoke.status_code == 200
    devices["expired"] = county.device("cadre_a", "phone left in a drawer")
    devices["anonymous"] = Device(app.test_client(), uid(), "", {})
    yield World(county, devices, county.device("helper"))
    with app.app_context():
        db.engine.dispose()


def region(parent: str | None, level: str, name: str) -> dict[str, Any]:
    return {"parent_id": parent, "level": level, "name": name, "code": None}


def household(village: str, code: str) -> dict[str, Any]:
    return {
        "village_id": village,
        "code": code,
        "head_name": "户主" + code[-3:],
        "address": None,
        "phone": None,
        "category": "脱贫户",
        "status": "active",
        "visit_policy": "weekly",
        "lat": None,
        "lon": None,
        "notes": None,
    }


def fresh() -> str:
    return uid().replace("-", "")[:12]


def helper_push(w: World, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = w.helper.push(ops).get_json()["results"]
    assert all(r["status"] in ("applied", "conflict") for r in results), results
    return results


# Fillers: how a row's placeholders ({household}, <problem_id> …) are filled for a caller,
# in or out of their scope. "listed" names the record a listing must (must not) show.

Filler = Callable[[World, str, str], dict[str, Any]]


def nothing(w: World, caller: str, where: str) -> dict[str, Any]:
    return {}


def credentials(w: World, caller: str, where: str) -> dict[str, Any]:
    return {"username": w.username(caller)}


def a_household(w: World, caller: str, where: str) -> dict[str, Any]:
    household_id = w.county.households[w.keys(caller, where)[0]]
    return {"household": household_id, "listed": household_id}


def a_region(w: World, caller: str, where: str) -> dict[str, Any]:
    region_id = w.county.regions[w.keys(caller, where)[1]]
    return {"region": region_id, "listed": region_id}


def a_village(w: World, caller: str, where: str) -> dict[str, Any]:
    """The village of the caller's household in or out of scope, its township and county."""
    village = VILLAGE_OF[w.keys(caller, where)[0]]
    township = TOWNSHIP_OF[village]
    r = w.county.regions
    return {"village": r[village], "township": r[township], "county_name": COUNTY_OF[township]}


def a_new_household(w: World, caller: str, where: str) -> dict[str, Any]:
    household_id, village = uid(), a_village(w, caller, where)["village"]
    with w.app.app_context():
        create_server_records([("household", household_id, household(village, fresh()))], None)
    return {"household": household_id}


def a_person(w: World, caller: str, where: str) -> dict[str, Any]:
    household_id, person_id = a_household(w, caller, where)["household"], uid()
    person = {"household_id": household_id, "name": "新成员", "relation": "子", "flags": []}
    helper_push(w, [w.helper.op("create", "person", person_id, person)])
    return {"person": person_id}


def a_problem(w: World, caller: str, where: str) -> dict[str, Any]:
    household_id, problem_id = a_household(w, caller, where)["household"], uid()
    problem = {"household_id": household_id, "category": "medical", "description": "缺轮椅"}
    helper_push(w, [w.helper.op("create", "problem", problem_id, problem)])
    return {"problem": problem_id, "listed": problem_id}


def a_conflict(w: World, caller: str, where: str) -> dict[str, Any]:
    """An open conflict on the household's notes: the helper's edit, made on the version
    before an admin's edit of the same field."""
    household_id = a_household(w, caller, where)["household"]
    with w.app.app_context():
        base = db.session.scalar(select(Household.version).where(Household.id == household_id))
        admin = w.county.users["admin"]
        server_update(admin, EVERYTHING, "household", household_id, {"notes": "办公室"})
    op = w.helper.op("update", "household", household_id, {"notes": "现场"}, base)
    assert helper_push(w, [op])[0]["status"] == "conflict"
    with w.app.app_context():
        conflict_id = db.session.scalar(
            select(Conflict.id)
            .where(Conflict.record_id == household_id)
            .order_by(Conflict.version.desc())
        )
    return {"conflict": conflict_id, "listed": conflict_id}


def a_device(w: World, caller: str, where: str) -> dict[str, Any]:
    """In scope: another device of the caller's own user; out: a device of cadre_b, or for
    the admin of 青山县 one of cadre_s of 白水县."""
    outside = "cadre_s" if caller == "admin" else "cadre_b"
    owner = w.username(caller) if where == "in" else outside
    return {"device": w.county.device(owner, "spare phone").device_id}


def two_users(w: World, caller: str, where: str) -> dict[str, Any]:
    """Two new cadres of the village in or out of the caller's scope, and its household."""
    village = a_village(w, caller, where)["village"]
    with w.app.app_context():
        users = [create_user("u" + fresh(), PASSWORD, "cadre", [village], [], "新") for _ in "ab"]
    return {"user": users[0], "user2": users[1], **a_household(w, caller, where)}


def a_photo(w: World, caller: str, where: str) -> dict[str, Any]:
    """A photo the helper took on a visit of the household (once per household)."""
    key = w.keys(caller, where)[0]
    if key not in w.photos:
        content = b"\xff\xd8\xff" + key.encode() * 64 + b"\xff\xd9"
        sha = hashlib.sha256(content).hexdigest()
        visit = w.helper.visit(
            w.county.households[key], form_id="house_photo", form_version=1, answers={"photo": sha}
        )
        helper_push(w, [visit])
        stored = w.helper.client.put(
            f"/api/v1/blobs/{sha}",
            data=content,
            content_type="image/jpeg",
            headers=w.helper.headers,
        )
        assert stored.status_code == 201
        w.photos[key] = sha
    return {"sha256": w.photos[key]}


def a_visit(w: World, caller: str, where: str) -> dict[str, Any]:
    """A visit the helper made of the household in or out of the caller's scope."""
    visit = w.helper.visit(w.county.households[w.keys(caller, where)[0]])
    helper_push(w, [visit])
    return {"visit": visit["id"]}


def new_photo_bytes(w: World, caller: str, where: str) -> dict[str, Any]:
    content = b"\xff\xd8\xff" + fresh().encode() * 64 + b"\xff\xd9"
    return {"sha256": hashlib.sha256(content).hexdigest(), "bytes": content}


def a_channel(w: World, caller: str, where: str) -> dict[str, Any]:
    """A region's WeCom robot, there to be deleted (server/notices)."""
    region_id = w.county.regions[w.keys(caller, where)[1]]
    with w.app.app_context():
        save_channel(region_id, "wecom", ROBOT["url"], None, ["overdue_digest"], "matrix")
    return {"region": region_id, "channel": "wecom"}


def a_region_channel(w: World, caller: str, where: str) -> dict[str, Any]:
    return {**a_region(w, caller, where), "channel": "wecom"}


def a_bulletin(w: World, caller: str, where: str) -> dict[str, Any]:
    """A region in or out of scope whose week-40 bulletin the Monday job kept (run once)."""
    if not w.bulletins:
        with w.app.app_context():
            jobs.weekly_bulletin(datetime(2026, 10, 5, 6, 0))  # keeps 2026-W40 of every region
        w.bulletins.add("2026-W40")
    return {**a_region(w, caller, where), "period": "2026-W40"}


def a_job(w: World, caller: str, where: str) -> dict[str, Any]:
    return {"name": "problem_escalation" if where == "in" else "no_such_job"}


def a_form_version(w: World, caller: str, where: str) -> dict[str, Any]:
    """house_photo version 1 is published; version 99 is not."""
    return {"form": "house_photo", "version": 1 if where == "in" else 99}


# Bodies that are more than a dict of placeholders: (world, caller's device, filled) → the
# keyword arguments of the test client's request.


def push_a_visit(w: World, device: Device, filled: dict[str, Any]) -> dict[str, Any]:
    body = {
        "device_id": device.device_id,
        "schema": 1,
        "device_time": datetime.now(UTC).isoformat(),
        "ops": [device.visit(filled["household"])],
    }
    return {"json": body}


def photo_upload(w: World, device: Device, filled: dict[str, Any]) -> dict[str, Any]:
    return {"data": filled["bytes"], "content_type": "image/jpeg"}


def roster_upload(w: World, device: Device, filled: dict[str, Any]) -> dict[str, Any]:
    header = "户编码,户主姓名,乡镇,村,人员姓名,与户主关系,类别\n"
    csv = header + f"R{fresh()},张三,东河镇,上村,张三,户主,脱贫户\n"
    return {
        "data": {"file": (io.BytesIO(csv.encode()), "花名册.csv"), "county": filled["county_name"]},
        "query_string": {"dry_run": "true"},
        "content_type": "multipart/form-data",
    }


def xlsform_upload(w: World, device: Device, filled: dict[str, Any]) -> dict[str, Any]:
    sample = SAMPLES / "xlsform_monthly_monitoring.xlsx"
    return {
        "data": {"file": (io.BytesIO(sample.read_bytes()), sample.name)},
        "content_type": "multipart/form-data",
    }


# --- the matrix ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the URL rule under /api/v1; <name> is filled from the filler's values
    fill: Filler
    body: Any  # None, a dict (JSON, or the query string of a GET) with {placeholders}, or a builder
    cadre: str
    township: str
    county: str
    admin: str
    without_token: tuple[str, str, str] = ("revoked", "401", "401")  # revoked, expired, anonymous

    def expected(self, caller: str) -> str:
        if caller in ("revoked", "expired", "anonymous"):
            return self.without_token[("revoked", "expired", "anonymous").index(caller)]
        return str(getattr(self, caller))

    @property
    def rule(self) -> str:
        return "/api/v1" + self.path

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


# the bodies; a GET's is its query string
SIGN_IN = {"username": "{username}", "password": PASSWORD, "label": "matrix"}
REPORT = {"period": PERIOD, "region_id": "{region}"}
TREND = {"region_id": "{region}", "weeks": 2}
OVERDUE = {"region_id": "{region}"}
BULLETINS = {"region_id": "{region}"}
SUBMISSIONS = {"form_id": "weekly_visit", "period": PERIOD, "region_id": "{region}"}
ALL = {"limit": 5000, "per_page": 200}
NOTES = {"notes": "{fresh}"}
NEW_REGION = {"name": "{fresh}", "level": "village", "parent_id": "{township}"}
NEW_CODE = {"code": "{fresh}"}
NEW_HOUSEHOLD = {"village_id": "{village}", "code": "{fresh}", "head_name": "新户"}
NEW_PERSON = {"name": "新成员"}
NEW_USER = {
    "username": "u{fresh}",
    "password": PASSWORD,
    "role": "cadre",
    "region_ids": ["{village}"],
}
MAKE_ADMIN = {"role": "admin"}
NEW_PASSWORD = {"password": "pass-word-2"}
ASSIGN = {"region_ids": [], "household_ids": ["{household}"]}
TRANSFER = {"from_user": "{user}", "to_user": "{user2}"}
RESOLVE = {"value": "裁决"}
DUE = {"due_date": "2026-12-31"}
FORWARD = {"status": "in_progress"}
ROBOT = {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=matrix"}
NOBODY = ("201", "201", "201")  # sign-in needs no token: revoked, expired and anonymous too
PUBLIC = ("200", "200", "200")  # the API's own description, for anyone
LIST, SHOW = "listed/unlisted", "listed"
# fmt: off
MATRIX = [
    # method  path under /api/v1                    fill             body
    #     cadre               township            county              admin
    Row("POST",   "/devices",                           credentials,     SIGN_IN,
          "201",              "201",              "201",              "201", NOBODY),
    Row("DELETE", "/devices/<device_id>",               a_device,        None,
          "200/403",          "200/403",          "200/403",          "200/403"),
    Row("GET",    "/openapi.json",                      nothing,         None,
          "200",              "200",              "200",              "200", PUBLIC),
    Row("GET",    "/docs",                              nothing,         None,
          "200",              "200",              "200",              "200", PUBLIC),
    Row("GET",    "/docs.css",                          nothing,         None,
          "200",              "200",              "200",              "200", PUBLIC),
    Row("GET",    "/me",                                nothing,         None,
          "200",              "200",              "200",              "200"),
    Row("POST",   "/sync/push",                         a_household,     push_a_visit,
          "applied/rejected", "applied/rejected", "applied/rejected", "applied/rejected"),
    Row("GET",    "/sync/pull",                         a_household,     ALL,
          LIST,               LIST,               LIST,               LIST),
    Row("GET",    "/conflicts",                         a_conflict,      None,
          LIST,               LIST,               LIST,               LIST),
    Row("POST",   "/conflicts/<conflict_id>/resolve",   a_conflict,      RESOLVE,
          "403",              "200/404",          "200/404",          "200/404"),
    Row("PUT",    "/blobs/<sha256>",                    new_photo_bytes, photo_upload,
          "201",              "201",              "201",              "201"),
    Row("HEAD",   "/blobs/<sha256>",                    a_photo,         None,
          "200",              "200",              "200",              "200"),
    Row("GET",    "/blobs/<sha256>",                    a_photo,         None,
          "200/404",          "200/404",          "200/404",          "200/404"),
    Row("GET",    "/reports/coverage",                  a_region,        REPORT,
          "200/403",          "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/trend",                     a_region,        TREND,
          "200/403",          "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/overdue",                   a_region,        OVERDUE,
          "200/403",          "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/coverage.xlsx",             a_region,        REPORT,
          "403",              "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/coverage.csv",              a_region,        REPORT,
          "403",              "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/bulletins",                 a_bulletin,      BULLETINS,
          "403",              "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/bulletins/<period>.xlsx",   a_bulletin,      BULLETINS,
          "403",              "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/visits",                    a_region,        REPORT,
          "200/403",          "200/403",          "200/403",          "200/403"),
    Row("GET",    "/reports/visits/<visit_id>",         a_visit,         None,
          "200/404",          "200/404",          "200/404",          "200/404"),
    Row("GET",    "/reports/households/<household_id>", a_household,     None,
          "200/404",          "200/404",          "200/404",          "200/404"),
    Row("GET",    "/reports/submissions.xlsx",          a_region,        SUBMISSIONS,
          "403",              "200/403",          "200/403",          "200/403"),
    Row("GET",    "/problems",                          a_problem,       None,
          LIST,               LIST,               LIST,               LIST),
    Row("GET",    "/problems/<problem_id>",             a_problem,       None,
          "200/404",          "200/404",          "200/404",          "200/404"),
    Row("POST",   "/problems/<problem_id>",             a_problem,       DUE,
          "403/404",          "200/404",          "200/404",          "200/404"),
    Row("GET",    "/problems/<problem_id>/history",     a_problem,       None,
          "200/404",          "200/404",          "200/404",          "200/404"),
    Row("POST",   "/problems/<problem_id>/status",      a_problem,       FORWARD,
          "200/404",          "200/404",          "200/404",          "200/404"),
    Row("GET",    "/admin/regions",                     a_region,        None,
          "403",              LIST,               LIST,               LIST),
    Row("POST",   "/admin/regions",                     a_village,       NEW_REGION,
          "403",              "403",              "403",              "201/422"),
    Row("PATCH",  "/admin/regions/<region_id>",         a_region,        NEW_CODE,
          "403",              "403",              "403",              "200/404"),
    Row("GET",    "/admin/households",                  a_household,     ALL,
          "403",              LIST,               LIST,               LIST),
    Row("POST",   "/admin/households",                  a_village,       NEW_HOUSEHOLD,
          "403",              "403",              "403",              "201/422"),
    Row("GET",    "/admin/households/<household_id>",   a_household,     None,
          "403",              "200/404",          "200/404",          "200/404"),
    Row("PATCH",  "/admin/households/<household_id>",   a_household,     NOTES,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/households/<household_id>/archive", a_new_household, None,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/households/<household_id>/people",  a_household,     NEW_PERSON,
          "403",              "403",              "403",              "201/404"),
    Row("PATCH",  "/admin/people/<person_id>",          a_person,        NOTES,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/roster",                      a_village,       roster_upload,
          "403",              "403",              "403",              "200/422"),
    Row("GET",    "/admin/users",                       nothing,         None,
          "403",              "403",              "403",              "200"),
    Row("POST",   "/admin/users",                       a_village,       NEW_USER,
          "403",              "403",              "403",              "201/403"),
    Row("GET",    "/admin/users/<user_id>",             two_users,       None,
          "403",              "403",              "403",              "200/404"),
    Row("PATCH",  "/admin/users/<user_id>",             two_users,       MAKE_ADMIN,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/users/<user_id>/activate",    two_users,       None,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/users/<user_id>/deactivate",  two_users,       None,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/users/<user_id>/password",    two_users,       NEW_PASSWORD,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/users/<user_id>/sign-out",    two_users,       None,
          "403",              "403",              "403",              "200/404"),
    Row("PUT",    "/admin/users/<user_id>/assignment",  two_users,       ASSIGN,
          "403",              "403",              "403",              "200/404"),
    Row("POST",   "/admin/assignments/transfer",        two_users,       TRANSFER,
          "403",              "403",              "403",              "200/404"),
    Row("GET",    "/admin/devices",                     nothing,         None,
          "403",              "403",              "403",              "200"),
    Row("POST",   "/admin/devices/<device_id>/revoke",  a_device,        None,
          "403",              "403",              "403",              "200/403"),
    Row("GET",    "/admin/visit-policy",                nothing,         None,
          "403",              "403",              "403",              "200"),
    Row("PUT",    "/admin/visit-policy",                nothing,         {},
          "403",              "403",              "403",              "403"),
    Row("GET",    "/admin/forms",                       nothing,         None,
          "403",              "403",              "403",              "200"),
    Row("POST",   "/admin/forms/preview",               nothing,         xlsform_upload,
          "403",              "403",              "403",              "200"),
    Row("POST",   "/admin/forms",                       nothing,         xlsform_upload,
          "403",              "403",              "403",              "403"),
    Row("GET",    "/admin/forms/<form_id>/<version>.xlsx", a_form_version, None,
          "403",              "403",              "403",              "200/404"),
    Row("GET",    "/admin/regions/<region_id>/notices", a_region,        None,
          "403",              "403",              "403",              "200/404"),
    Row("PUT",    "/admin/regions/<region_id>/notices/<channel>", a_region_channel, ROBOT,
          "403",              "403",              "403",              "200/404"),
    Row("DELETE", "/admin/regions/<region_id>/notices/<channel>", a_channel, None,
          "403",              "403",              "403",              "200/404"),
    Row("GET",    "/admin/notices/deliveries",          nothing,         None,
          "403",              "200",              "200",              "200"),
    Row("GET",    "/admin/jobs",                        nothing,         None,
          "403",              "200",              "200",              "200"),
    Row("POST",   "/admin/jobs/<name>/run",             a_job,           None,
          "403",              "403",              "403",              "403"),
]
# fmt: on


# --- running it ------------------------------------------------------------------------------

EXPIRED_AFTER = timedelta(days=TOKEN_TTL_DAYS + 1)
ERRORS = {
    "401": (401, "unauthorized"),
    "revoked": (401, "device_revoked"),
    "403": (403, "forbidden"),
    "404": (404, "not_found"),
}


def fill_in(template: Any, values: dict[str, Any]) -> Any:
    """The template with every {name} replaced by its value."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", str(value))
        return template
    if isinstance(template, dict):
        return {key: fill_in(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_in(value, values) for value in template]
    return template


def call(w: World, caller: str, row: Row, where: str) -> tuple[Any, dict[str, Any]]:
    values = {"fresh": fresh(), **row.fill(w, caller, where)}
    values.setdefault("username", w.username(caller))
    path = re.sub(r"<(\w+)>", lambda m: str(values[m[1].removesuffix("_id")]), row.rule)
    device = w.devices[caller]
    if callable(row.body):
        request = row.body(w, device, values)
    elif row.body is None:
        request = {}
    else:
        request = {"query_string" if row.method == "GET" else "json": fill_in(row.body, values)}
    headers = {"Authorization": f"Bearer {device.token}"} if caller != "anonymous" else {}
    if caller == "expired":  # the server's clock, a day past the token's time to live
        w.app.config["CLOCK"] = lambda: datetime.now(UTC) + EXPIRED_AFTER
    try:
        response = device.client.open(path, method=row.method, headers=headers, **request)
    finally:
        w.app.config.pop("CLOCK", None)
    return response, values


def check(response: Any, expected: str, values: dict[str, Any], method: str) -> None:
    assert "Set-Cookie" not in response.headers  # bearer tokens only (tests/test_security.py)
    assert response.headers["Cache-Control"] == "no-store"  # personal data (server/security.py)
    shown = f"{response.status_code} {response.get_data()[:300]!r}"
    if expected in ("listed", "unlisted"):
        assert response.status_code == 200, shown
        assert (values["listed"] in response.get_data(as_text=True)) == (expected == "listed")
    elif expected in ("applied", "rejected"):
        assert response.status_code == 200, shown
        result = response.get_json()["results"][0]
        assert result["status"] == expected, result
        if expected == "rejected":
            assert result["error"]["code"] == "forbidden", result
    elif expected in ERRORS:
        status, code = ERRORS[expected]
        assert response.status_code == status, shown
        if method != "HEAD":  # a HEAD answer has no body
            assert response.mimetype == "application/json", shown
            error = response.get_json()["error"]
            assert error["code"] == code and isinstance(error["message"], str), shown
    else:
        assert response.status_code == int(expected), shown


def api_endpoints(app: Any) -> set[tuple[str, str]]:
    """(method, URL rule) of every endpoint under /api/; HEAD only where it is routed itself."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            methods = set(rule.methods or ()) - {"OPTIONS"}
            if "GET" in methods:
                methods.discard("HEAD")  # Flask answers HEAD for every GET
            found |= {(method, rule.rule) for method in methods}
    return found


def test_every_api_endpoint_has_a_row_in_the_matrix(world: World) -> None:
    rows = [(row.method, row.rule) for row in MATRIX]
    assert len(rows) == len(set(rows)), "a row appears twice"
    missing = api_endpoints(world.app) - set(rows)
    assert not missing, f"endpoints without a row in MATRIX: {sorted(missing)}"
    assert not set(rows) - api_endpoints(world.app), "rows for endpoints that do not exist"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: row.id)
def test_the_caller_gets_the_status_of_the_matrix(world: World, row: Row, caller: str) -> None:
    cell = row.expected(caller)
    inside, _, outside = cell.partition("/")
    for where, expected in (("in", inside), ("out", outside or inside)):
        response, values = call(world, caller, row, where)
        check(response, expected, values, row.method)


def test_one_county_of_a_province_is_not_everything() -> None:
    tree = {"c1": (None, "county"), "t1": ("c1", "township"), "c2": (None, "county")}
    assert not expand(Assignment.of(["c1"], []), tree, {}).everything
    assert expand(Assignment.of(["c1", "c2"], []), tree, {}).everything


def audit_log(w: World) -> dict[int, tuple[Any, ...]]:
    """Every audit entry, by id, with all its columns."""
    with w.app.app_context():
        return {row.id: tuple(row) for row in db.session.execute(select(AuditEntry.__table__))}


def test_no_endpoint_changes_or_deletes_an_audit_entry(world: World) -> None:
    """Every row of the matrix, called by each signed-in caller in and out of scope: the audit
    log only grows, and every entry stays as it was written."""
    first = before = audit_log(world)
    for row in MATRIX:
        for caller in ("cadre", "township", "county", "admin"):
            for where in ("in", "out"):
                call(world, caller, row, where)
        after = audit_log(world)
        changed = sorted(i for i, entry in before.items() if after.get(i) != entry)
        assert not changed, f"{row.id} changed or deleted the audit entries {changed}"
        assert all(i > max(before) for i in set(after) - set(before))  # appended, not inserted
        before = after
    assert len(before) > len(first) + 50  # the admin's changes, sign-ins, revocations …
