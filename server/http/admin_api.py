"""The administration API under /api/v1/admin (docs/admin.md): regions, households and
people, the roster import, users and their 包保 assignments, devices and the visit policy
(forms: server/http/forms_admin_api.py).

Admins only, except that a supervisor may read the regions, households and people of their
own regions. An admin administers the regions assigned to them and what lies below (one rule,
service.administration, asked by every route): outside them a region, household, person, user
or device answers 404 as if it did not exist; server-wide settings (new counties, the visit
policy, running jobs) are for an admin of every county. Every change is audited. Synced
records change the way phones see them change: households and people through the sync engine
(service.server_update), regions by a new version of the record; either way the next pull
brings them.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate
from sqlalchemy import JSON, String, cast, func, or_, select, update
from sqlalchemy.engine import Connection

from server import service
from server.admin.accounts import (
    MIN_PASSWORD,
    AccountError,
    check_password,
    create_user,
    global_admins_keep_every_county,
    publish_user,
    reassign,
)
from server.admin.roster import MESSAGES as ROSTER_MESSAGES
from server.admin.roster import (
    RosterRejected,
    check_visit_policy,
    derive_visit_policy,
    import_roster,
    save_visit_policy,
    visit_policy,
)
from server.admin.uploads import UploadTooLarge
from server.auth import (
    ROLES,
    Caller,
    assignment_of,
    clear_failures,
    current_caller,
    hash_password,
    require_role,
)
from server.http.errors import ApiError, wants_english
from server.http.request_checks import checked_json, nul_fields, refuse_nul
from server.http.schemas import load
from server.service import Administration, mask_phone
from server.storage.models import Assignment as AssignmentRow
from server.storage.models import Device, Household, Person, Region, User
from server.timeutil import utc_iso
from sync.ids import new_id
from sync.records import id_number_problem, normal_id_number
from sync.scope import Assignment, Scope

admin = Blueprint("admin", __name__, url_prefix="/api/v1/admin")

REGION_LEVELS = ("province", "county", "township", "village")
#: the levels a region's parent may have (None: no parent); a county stands alone or in a province
PARENT_LEVELS = {
    "province": (None,),
    "county": (None, "province"),
    "township": ("county",),
    "village": ("township",),
}
ROSTER_MAX_BYTES = 32 * 1024 * 1024
BODY_MAX_BYTES = 64 * 1024
PER_PAGE, MAX_PER_PAGE = 50, 200


# --- who may call, and what they see ---------------------------------------------------------


def _admin() -> Caller:
    caller = current_caller()
    require_role(caller, "admin")
    return caller


def _administrator() -> tuple[Caller, Administration]:
    """An admin, and what they administer."""
    caller = _admin()
    return caller, service.administration(caller)


def _everything() -> Caller:
    """An admin of every county: server-wide settings are theirs alone."""
    caller, administers = _administrator()
    if not administers.everything:
        raise ApiError("forbidden", "only an admin of every county may change this")
    return caller


def _reader() -> tuple[Caller, Scope]:
    """An admin or a supervisor, and the households and regions they see: their regions."""
    caller = current_caller()
    require_role(caller, "admin", "supervisor")
    return caller, service.administration(caller).scope


def _body(schema: Schema) -> dict[str, Any]:
    request.max_content_length = BODY_MAX_BYTES
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiError("invalid_request", "expected a JSON object")
    return load(schema, checked_json(payload))


def _invalid(field: str, message: str) -> ApiError:
    return ApiError("validation_failed", message, {"fields": {field: [message]}})


def _audit(caller: Caller, action: str, target_type: str, target_id: str, **details: Any) -> None:
    with service.store().engine.begin() as conn:
        service.audit(
            conn, action, caller.user_id, caller.device_id, target_type, target_id, details or None
        )


# --- request bodies --------------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class RegionCreate(_Strict):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    level = fields.String(required=True, validate=validate.OneOf(REGION_LEVELS))
    parent_id = fields.String(load_default=None, allow_none=True)
    code = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 20))


class RegionEdit(_Strict):
    name = fields.String(validate=validate.Length(1, 100))
    code = fields.String(allow_none=True, validate=validate.Length(0, 20))


class HouseholdCreate(_Strict):
    village_id = fields.String(required=True)
    code = fields.String(required=True, validate=validate.Length(1, 40))
    head_name = fields.String(required=True, validate=validate.Length(1, 200))
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 40))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 200))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 40))
    notes = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 2000))
    visit_policy = fields.String(load_default=None, allow_none=True)


class HouseholdEdit(_Strict):
    """The fields an admin may change; the sync engine checks the values (sync/records.py)."""

    head_name = fields.Raw()
    address = fields.Raw(allow_none=True)
    phone = fields.Raw(allow_none=True)
    category = fields.Raw(allow_none=True)
    status = fields.Raw()
    visit_policy = fields.Raw()
    lat = fields.Raw(allow_none=True)
    lon = fields.Raw(allow_none=True)
    notes = fields.Raw(allow_none=True)


class PersonEdit(_Strict):
    name = fields.Raw()
    relation = fields.Raw(allow_none=True)
    gender = fields.Raw(allow_none=True)
    birth_year = fields.Raw(allow_none=True)
    id_number = fields.Raw(allow_none=True)
    phone = fields.Raw(allow_none=True)
    notes = fields.Raw(allow_none=True)
    flags = fields.Raw()


class PersonCreate(PersonEdit):
    name = fields.Raw(required=True)


class UserCreate(_Strict):
    username = fields.String(required=True)
    password = fields.String(required=True, validate=validate.Length(1, 200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    name = fields.String(load_default=None, validate=validate.Length(1, 100))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(0, 40))
    region_ids = fields.List(fields.String(), load_default=list)
    household_ids = fields.List(fields.String(), load_default=list)


class UserEdit(_Strict):
    name = fields.String(validate=validate.Length(1, 100))
    phone = fields.String(allow_none=True, validate=validate.Length(0, 40))
    role = fields.String(validate=validate.OneOf(ROLES))


class PasswordReset(_Strict):
    password = fields.String(required=True, validate=validate.Length(MIN_PASSWORD, 200))
    sign_out = fields.Boolean(load_default=True)


class AssignmentSet(_Strict):
    region_ids = fields.List(fields.String(), required=True)
    household_ids = fields.List(fields.String(), load_default=list)


class Transfer(_Strict):
    from_user = fields.String(required=True)
    to_user = fields.String(required=True)


class HouseholdQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(load_default=None, validate=validate.Length(0, 100))
    region_id = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(("active", "archived")))
    category = fields.String(load_default=None)
    page = fields.Integer(load_default=1, validate=validate.Range(1, 10**6))
    per_page = fields.Integer(load_default=PER_PAGE, validate=validate.Range(1, MAX_PER_PAGE))


# --- regions ---------------------------------------------------------------------------------


def _region_rows(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            select(
                Region.id, Region.parent_id, Region.level, Region.name, Region.code, Region.version
            )
            .where(~Region.deleted)
            .order_by(Region.name, Region.id)
        )
    )


def _region_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "parent_id": row.parent_id,
        "level": row.level,
        "name": row.name,
        "code": row.code,
        "version": row.version,
    }


@admin.get("/regions")
def regions() -> Response:
    """The region tree the caller may see: county → townships → villages."""
    _caller, scope = _reader()
    with service.store().engine.connect() as conn:
        rows = [r for r in _region_rows(conn) if scope.everything or r.id in scope.region_ids]
    nodes = {r.id: {**_region_json(r), "children": []} for r in rows}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node["parent_id"])
        (parent["children"] if parent else roots).append(node)
    return jsonify({"regions": roots})


@admin.post("/regions")
def create_region() -> tuple[Response, int]:
    """A township or village under a region the admin administers; a county (a new top-level
    region) only by an admin of every county, who all keep every county."""
    caller, administers = _administrator()
    body = _body(RegionCreate())
    with service.store().engine.connect() as conn:
        rows = _region_rows(conn)
    levels = {r.id: r.level for r in rows if administers.region(r.id)}
    parent = body["parent_id"]
    allowed = PARENT_LEVELS[body["level"]]
    found = levels.get(parent) if parent is not None else None
    if (parent is not None and found is None) or found not in allowed:
        needs = [f"a {level} as parent" if level else "no parent" for level in allowed]
        raise _invalid("parent_id", f"a {body['level']} needs " + " or ".join(needs))
    if parent is None and not administers.everything:
        raise ApiError("forbidden", "only an admin of every county may add a county")
    _same_name_check(rows, parent, body["name"], None)
    region_id = new_id()
    data = {"parent_id": parent, "level": body["level"], "name": body["name"], "code": body["code"]}
    with global_admins_keep_every_county(caller.user_id):
        service.create_server_records(
            [("region", region_id, data)], caller.user_id, "region_created"
        )
    _audit(caller, "region_created", "region", region_id, name=body["name"], level=body["level"])
    return jsonify(_region(region_id)), 201


def _same_name_check(rows: list[Any], parent: str | None, name: str, region_id: str | None) -> None:
    if any(r.parent_id == parent and r.name == name and r.id != region_id for r in rows):
        raise ApiError("conflict", f"a region named {name} exists under the same parent")


def _region(region_id: str) -> dict[str, Any]:
    with service.store().engine.connect() as conn:
        row = next((r for r in _region_rows(conn) if r.id == region_id), None)
    if row is None:
        raise ApiError("not_found", "no such region")
    return _region_json(row)


@admin.patch("/regions/<region_id>")
def edit_region(region_id: str) -> Response:
    """Rename a region (or change its code): a new version of the record, pulled by phones."""
    caller, administers = _administrator()
    body = _body(RegionEdit())
    if not body:
        raise _invalid("_body", "nothing to change")
    if not administers.region(region_id):
        raise ApiError("not_found", "no such region")
    with service.store().write() as txn:
        record = txn.records("region", [region_id]).get(region_id)
        if record is None or record.deleted:
            raise ApiError("not_found", "no such region")
        if "name" in body:
            _same_name_check(
                _region_rows(txn.conn), record.data.get("parent_id"), body["name"], region_id
            )
        record.data.update(body)
        record.version = txn.allocate_version()
        txn.update_records([record])
        service.audit(
            txn.conn, "region_edited", caller.user_id, caller.device_id, "region", region_id, body
        )
    return jsonify(_region(region_id))


# --- households and people -------------------------------------------------------------------


def _head_name() -> Any:
    """households.data → head_name, in the SQL of the database at hand."""
    if service.store().postgres:
        return cast(Household.data, JSON)["head_name"].as_string()
    return func.json_extract(Household.data, "$.head_name", type_=String)


def _villages_under(rows: list[Any], region_id: str) -> set[str]:
    below, stack = set(), [region_id]
    children: dict[str, list[str]] = {}
    for r in rows:
        children.setdefault(r.parent_id, []).append(r.id)
    while stack:
        current = stack.pop()
        if current not in below:
            below.add(current)
            stack.extend(children.get(current, []))
    return {r.id for r in rows if r.id in below and r.level == "village"}


def _places(rows: list[Any]) -> dict[str, tuple[str, str | None]]:
    """village id → (village name, township name)."""
    names = {r.id: r for r in rows}
    out = {}
    for r in rows:
        if r.level == "village":
            parent = names.get(r.parent_id)
            out[r.id] = (r.name, parent.name if parent else None)
    return out


def _in_scope(scope: Scope) -> Any:
    if scope.everything:
        return None
    return or_(
        Household.village_id.in_(sorted(scope.village_ids)),
        Household.id.in_(sorted(scope.household_ids)),
    )


@admin.get("/households")
def households() -> Response:
    """Households by head's name or code (substring), region, status and category, a page at
    a time; phone numbers masked."""
    _caller, scope = _reader()
    query = load(HouseholdQuery(), request.args.to_dict())
    conditions = [~Household.deleted]
    if (visible := _in_scope(scope)) is not None:
        conditions.append(visible)
    with service.store().engine.connect() as conn:
        regions = _region_rows(conn)
        if query["region_id"]:
            conditions.append(
                Household.village_id.in_(sorted(_villages_under(regions, query["region_id"])))
            )
        if query["q"]:
            q = query["q"]
            conditions.append(
                or_(
                    Household.code.contains(q, autoescape=True),
                    _head_name().contains(q, autoescape=True),
                )
            )
        if query["status"]:
            conditions.append(Household.status == query["status"])
        if query["category"]:
            conditions.append(Household.category == query["category"])
        total = conn.execute(
            select(func.count()).select_from(Household).where(*conditions)
        ).scalar()
        rows = conn.execute(
            select(Household.id, Household.version, Household.village_id, Household.data)
            .where(*conditions)
            .order_by(Household.code, Household.id)
            .limit(query["per_page"])
            .offset((query["page"] - 1) * query["per_page"])
        ).all()
        counts = dict(
            conn.execute(
                select(Person.household_id, func.count())
                .where(Person.household_id.in_([r.id for r in rows]), ~Person.deleted)
                .group_by(Person.household_id)
            ).all()
        )
    places = _places(regions)
    items = []
    for row in rows:
        data = json.loads(row.data)
        village, township = places.get(row.village_id, (None, None))
        items.append(
            {
                "id": row.id,
                "version": row.version,
                "code": data.get("code"),
                "head_name": data.get("head_name"),
                "village_id": row.village_id,
                "village": village,
                "township": township,
                "category": data.get("category"),
                "status": data.get("status"),
                "visit_policy": data.get("visit_policy"),
                "phone": mask_phone(data.get("phone")),
                "people": counts.get(row.id, 0),
            }
        )
    return jsonify(
        {"households": items, "total": total, "page": query["page"], "per_page": query["per_page"]}
    )


def _household_detail(household_id: str, caller: Caller, scope: Scope) -> dict[str, Any]:
    with service.store().engine.connect() as conn:
        row = conn.execute(
            select(Household.id, Household.version, Household.village_id, Household.data).where(
                Household.id == household_id, ~Household.deleted
            )
        ).first()
        if row is None or not scope.holds(row.village_id, row.id):
            raise ApiError("not_found", "no such household")
        people = conn.execute(
            select(Person.id, Person.version, Person.data)
            .where(Person.household_id == household_id, ~Person.deleted)
            .order_by(Person.version)
        ).all()
        village, township = _places(_region_rows(conn)).get(row.village_id, (None, None))
    people_out = []
    for person in people:
        data = json.loads(person.data)
        if caller.role != "admin":
            data["id_number"] = service.mask_id_number(data.get("id_number"))
        people_out.append({"id": person.id, "version": person.version, **data})
    return {
        "household": {
            "id": row.id,
            "version": row.version,
            **json.loads(row.data),
            "village": village,
            "township": township,
        },
        "people": people_out,
    }


@admin.get("/households/<household_id>")
def household(household_id: str) -> Response:
    caller, scope = _reader()
    return jsonify(_household_detail(household_id, caller, scope))


@admin.post("/households")
def create_household() -> tuple[Response, int]:
    caller, administers = _administrator()
    body = _body(HouseholdCreate())
    with service.store().engine.connect() as conn:
        village = conn.execute(
            select(Region.id).where(
                Region.id == body["village_id"], Region.level == "village", ~Region.deleted
            )
        ).first()
        taken = conn.execute(select(Household.id).where(Household.code == body["code"])).first()
    if village is None or not administers.region(village.id):
        raise _invalid("village_id", "no such village")
    if taken is not None:
        raise ApiError("conflict", f"a household with code {body['code']} exists")
    policy = body.pop("visit_policy") or derive_visit_policy(
        body["category"], False, visit_policy()
    )
    try:
        policy = check_visit_policy({"default": policy})["default"]
    except ValueError as exc:
        raise _invalid("visit_policy", str(exc)) from None
    household_id = new_id()
    data = {**body, "status": "active", "visit_policy": policy, "lat": None, "lon": None}
    service.create_server_records(
        [("household", household_id, data)], caller.user_id, "household_created"
    )
    _audit(caller, "household_created", "household", household_id, code=body["code"])
    return jsonify(_household_detail(household_id, caller, administers.scope)), 201


def _administered_household(household_id: str) -> tuple[Caller, Scope]:
    """An admin and their scope, when it holds the household; 404 as for none otherwise."""
    caller, administers = _administrator()
    with service.store().engine.connect() as conn:
        village_id = conn.execute(
            select(Household.village_id).where(Household.id == household_id, ~Household.deleted)
        ).scalar()
    if not administers.household(village_id, household_id):
        raise ApiError("not_found", "no such household")
    return caller, administers.scope


@admin.patch("/households/<household_id>")
def edit_household(household_id: str) -> Response:
    caller, scope = _administered_household(household_id)
    body = _body(HouseholdEdit())
    service.server_update(caller.user_id, scope, "household", household_id, body)
    _audit(caller, "household_edited", "household", household_id, fields=sorted(body))
    return jsonify(_household_detail(household_id, caller, scope))


@admin.post("/households/<household_id>/archive")
def archive_household(household_id: str) -> Response:
    """Archived households are no longer due; their visits and problems stay."""
    caller, scope = _administered_household(household_id)
    service.server_update(caller.user_id, scope, "household", household_id, {"status": "archived"})
    _audit(caller, "household_archived", "household", household_id)
    return jsonify(_household_detail(household_id, caller, scope))


def _check_person(body: dict[str, Any], household_id: str, person_id: str | None) -> None:
    """ID numbers as the roster import checks them, and once per household."""
    if "id_number" in body and not body["id_number"]:
        body["id_number"] = None
    if not body.get("id_number"):
        return
    if not isinstance(body["id_number"], str):
        raise _invalid("id_number", "must be a string")
    body["id_number"] = normal_id_number(body["id_number"])
    problem = id_number_problem(body["id_number"])
    if problem:
        masked = service.mask_id_number(body["id_number"])
        raise _invalid("id_number", ROSTER_MESSAGES[problem][1].format(id=masked))
    with service.store().engine.connect() as conn:
        others = conn.execute(
            select(Person.id, Person.data).where(
                Person.household_id == household_id, ~Person.deleted
            )
        ).all()
    if any(
        json.loads(p.data).get("id_number") == body["id_number"] and p.id != person_id
        for p in others
    ):
        raise ApiError("conflict", "a person of this household has this ID number")


@admin.post("/households/<household_id>/people")
def add_person(household_id: str) -> tuple[Response, int]:
    caller, scope = _administered_household(household_id)
    body = _body(PersonCreate())
    _check_person(body, household_id, None)
    person_id = new_id()
    data = {"household_id": household_id, **body}
    service.server_update(caller.user_id, scope, "person", person_id, data, action="create")
    _audit(caller, "person_added", "person", person_id, household_id=household_id)
    return jsonify(_person(person_id, scope)), 201


@admin.patch("/people/<person_id>")
def edit_person(person_id: str) -> Response:
    caller, administers = _administrator()
    body = _body(PersonEdit())
    found = _person(person_id, administers.scope)
    _check_person(body, found["household_id"], person_id)
    service.server_update(caller.user_id, administers.scope, "person", person_id, body)
    _audit(caller, "person_edited", "person", person_id, fields=sorted(body))
    return jsonify(_person(person_id, administers.scope))


def _person(person_id: str, scope: Scope) -> dict[str, Any]:
    with service.store().engine.connect() as conn:
        row = conn.execute(
            select(
                Person.id, Person.version, Person.data, Person.village_id, Person.household_id
            ).where(Person.id == person_id, ~Person.deleted)
        ).first()
    if row is None or not scope.holds(row.village_id, row.household_id):
        raise ApiError("not_found", "no such person")
    return {"id": row.id, "version": row.version, **json.loads(row.data)}


# --- roster import ---------------------------------------------------------------------------


def _flag(name: str) -> bool:
    value = request.args.get(name, "false").lower()
    if value not in ("true", "1", "yes", "false", "0", "no", ""):
        raise _invalid(name, "must be true or false")
    return value in ("true", "1", "yes")


@admin.post("/roster")
def roster() -> Response:
    """Import a roster (multipart field ``file``), all rows or none; ``?dry_run=true`` checks
    and counts without writing. Errors: 422 with every bad row in ``details.errors``; a row
    of a village outside the admin's regions is one of them."""
    caller, administers = _administrator()
    request.max_content_length = current_app.config.get("ROSTER_MAX_BYTES", ROSTER_MAX_BYTES)
    dry_run = _flag("dry_run")
    upload = request.files.get("file")
    if upload is None:
        raise _invalid("file", "send the roster as multipart/form-data field 'file'")
    county = request.form.get("county") or request.args.get("county") or None
    if county is not None:
        refuse_nul(nul_fields(county, "county"))
    english = wants_english()
    content = upload.read()
    upload.close()  # werkzeug keeps uploads over 500 KB in a temporary file
    try:
        with global_admins_keep_every_county(caller.user_id):
            summary = import_roster(
                content,
                actor=caller.user_id,
                county=county,
                dry_run=dry_run,
                source=upload.filename or "",
                within=administers,
            )
    except UploadTooLarge as exc:
        raise exc.localize(english) from None
    except RosterRejected as exc:
        by_row: dict[str, list[str]] = {}
        for issue in exc.errors:
            key = f"row {issue.row}" if issue.row else "file"
            by_row.setdefault(key, []).append(issue.text(english))
        raise ApiError(
            "validation_failed",
            f"{len(exc.errors)} errors in the roster; nothing was imported",
            {
                "fields": by_row,
                "errors": [i.as_dict(english) for i in exc.errors],
                "warnings": [i.as_dict(english) for i in exc.warnings],
            },
        ) from None
    summary["warnings"] = [i.as_dict(english) for i in summary["warnings"]]
    return jsonify(summary)


# --- users and 包保 assignments --------------------------------------------------------------


def _user_row(conn: Connection, administers: Administration, user_id: str) -> Any:
    """The user, when the admin administers their whole assignment; 404 as for none else."""
    row = conn.execute(select(User).where(User.id == user_id)).first()
    if row is None or not administers.user(assignment_of(conn, user_id)):
        raise ApiError("not_found", "no such user")
    return row


def _check_given(
    administers: Administration, region_ids: list[str], household_ids: list[str]
) -> None:
    """No admin gives a user a region or household they do not administer themselves."""
    if not administers.user(Assignment.of(region_ids, household_ids)):
        raise ApiError("forbidden", "you may assign only regions and households you administer")


def _user_json(row: Any, conn: Connection, masked: bool) -> dict[str, Any]:
    assignment = assignment_of(conn, row.id)
    return {
        "id": row.id,
        "username": row.username,
        "name": row.name,
        "role": row.role,
        "phone": mask_phone(row.phone) if masked else row.phone,
        "active": row.active,
        "created_at": utc_iso(row.created_at),
        "region_ids": list(assignment.region_ids),
        "household_ids": list(assignment.household_ids),
    }


@admin.get("/users")
def users() -> Response:
    """Every user the admin administers (filters: role, active, q on username and name),
    phone numbers masked."""
    _caller, administers = _administrator()
    query = select(User).order_by(User.username)
    if role := request.args.get("role"):
        query = query.where(User.role == role)
    if (active := request.args.get("active")) is not None:
        query = query.where(User.active == (active.lower() in ("true", "1", "yes")))
    if q := request.args.get("q"):
        query = query.where(
            or_(User.username.contains(q, autoescape=True), User.name.contains(q, autoescape=True))
        )
    with service.store().engine.connect() as conn:
        rows = conn.execute(query).all()
        assignments: dict[str, dict[str, list[str]]] = {}
        for a in conn.execute(select(AssignmentRow)):
            assignments.setdefault(a.user_id, {"region": [], "household": []})[a.kind].append(
                a.target_id
            )
        devices = dict(
            conn.execute(
                select(Device.user_id, func.count())
                .where(Device.revoked_at.is_(None))
                .group_by(Device.user_id)
            ).all()
        )
    every_household = [h for given in assignments.values() for h in given["household"]]
    villages = {} if administers.everything else service.store().household_villages(every_household)
    items = []
    for row in rows:
        given = assignments.get(row.id, {"region": [], "household": []})
        if not administers.user(Assignment.of(given["region"], given["household"]), villages):
            continue
        items.append(
            {
                "id": row.id,
                "username": row.username,
                "name": row.name,
                "role": row.role,
                "phone": mask_phone(row.phone),
                "active": row.active,
                "region_ids": sorted(given["region"]),
                "household_ids": sorted(given["household"]),
                "devices": devices.get(row.id, 0),
            }
        )
    return jsonify({"users": items})


@admin.post("/users")
def add_user() -> tuple[Response, int]:
    caller, administers = _administrator()
    body = _body(UserCreate())
    _check_given(administers, body["region_ids"], body["household_ids"])
    try:
        user_id = create_user(
            body["username"],
            body["password"],
            body["role"],
            body["region_ids"],
            body["household_ids"],
            body["name"] or body["username"],
            body["phone"],
            actor=caller.user_id,
        )
    except AccountError as exc:
        field = str(exc).split(":")[0] if ":" in str(exc) else "_body"
        raise _invalid(field, str(exc)) from None
    with service.store().engine.connect() as conn:
        return jsonify(_user_json(_user_row(conn, administers, user_id), conn, masked=False)), 201


@admin.get("/users/<user_id>")
def user(user_id: str) -> Response:
    _caller, administers = _administrator()
    with service.store().engine.connect() as conn:
        out = _user_json(_user_row(conn, administers, user_id), conn, masked=False)
        out["devices"] = [_device_json(d) for d in conn.execute(_devices_query(user_id))]
    return jsonify(out)


@admin.patch("/users/<user_id>")
def edit_user(user_id: str) -> Response:
    """Name, phone or role. An admin cannot take their own admin role away; the admins they
    make administer no more than they do (the user's assignment lies within theirs)."""
    caller, administers = _administrator()
    body = _body(UserEdit())
    if not body:
        raise _invalid("_body", "nothing to change")
    if user_id == caller.user_id and body.get("role", "admin") != "admin":
        raise ApiError("conflict", "you cannot change your own role")
    with service.store().write() as txn:
        conn = txn.conn
        _user_row(conn, administers, user_id)
        conn.execute(update(User).where(User.id == user_id).values(**body))
        publish_user(txn, user_id)
        changed = {"fields": sorted(body), **({"role": body["role"]} if "role" in body else {})}
        service.audit(
            conn, "user_edited", caller.user_id, caller.device_id, "user", user_id, changed
        )
        return jsonify(_user_json(_user_row(conn, administers, user_id), conn, masked=False))


@admin.post("/users/<user_id>/deactivate")
def deactivate_user(user_id: str) -> Response:
    """The user can sign in no more, and every device of theirs is revoked (the PWA then
    offers to export what was not sent, and wipes its data)."""
    caller, administers = _administrator()
    if user_id == caller.user_id:
        raise ApiError("conflict", "you cannot deactivate yourself")
    with service.store().write() as txn:
        conn = txn.conn
        _user_row(conn, administers, user_id)
        conn.execute(update(User).where(User.id == user_id).values(active=False))
        publish_user(txn, user_id)
        revoked = service.revoke_devices_of(conn, user_id, caller)
        service.audit(
            conn,
            "user_deactivated",
            caller.user_id,
            caller.device_id,
            "user",
            user_id,
            {"devices_revoked": revoked},
        )
        out = _user_json(_user_row(conn, administers, user_id), conn, masked=False)
    return jsonify({**out, "devices_revoked": revoked})


@admin.post("/users/<user_id>/activate")
def activate_user(user_id: str) -> Response:
    caller, administers = _administrator()
    with service.store().write() as txn:
        conn = txn.conn
        _user_row(conn, administers, user_id)
        conn.execute(update(User).where(User.id == user_id).values(active=True))
        publish_user(txn, user_id)
        service.audit(conn, "user_activated", caller.user_id, caller.device_id, "user", user_id)
        return jsonify(_user_json(_user_row(conn, administers, user_id), conn, masked=False))


@admin.post("/users/<user_id>/password")
def reset_password(user_id: str) -> Response:
    """A new password; failed sign-ins are forgiven, and the user is signed out of every
    device (the old password may be known to someone else) unless ``sign_out`` is false."""
    caller, administers = _administrator()
    body = _body(PasswordReset())
    with service.store().engine.begin() as conn:
        row = _user_row(conn, administers, user_id)
        try:
            check_password(body["password"], row.username, row.name)
        except AccountError as exc:
            raise _invalid("password", str(exc)) from None
        conn.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_hash=hash_password(body["password"]))
        )
        clear_failures(conn, row.username)
        revoked = service.revoke_devices_of(conn, user_id, caller) if body["sign_out"] else 0
        service.audit(
            conn,
            "password_reset",
            caller.user_id,
            caller.device_id,
            "user",
            user_id,
            {"devices_revoked": revoked},
        )
    return jsonify({"id": user_id, "password_reset": True, "devices_revoked": revoked})


@admin.post("/users/<user_id>/sign-out")
def sign_out_user(user_id: str) -> Response:
    """Every device of the user answers 401 ``device_revoked`` from now on (a lost phone with
    an unknown id, a shared password): they sign in again on the phones they still have."""
    caller, administers = _administrator()
    with service.store().engine.begin() as conn:
        _user_row(conn, administers, user_id)
        revoked = service.revoke_devices_of(conn, user_id, caller)
        service.audit(
            conn,
            "user_signed_out",
            caller.user_id,
            caller.device_id,
            "user",
            user_id,
            {"devices_revoked": revoked},
        )
    return jsonify({"id": user_id, "devices_revoked": revoked})


def _reassign(user_id: str, region_ids: list[str], household_ids: list[str], actor: str) -> None:
    try:
        reassign(user_id, region_ids, household_ids, actor)
    except AccountError as exc:
        if str(exc) == "no such user":
            raise ApiError("not_found", "no such user") from None
        raise _invalid(
            "region_ids" if "region" in str(exc) else "household_ids", str(exc)
        ) from None


@admin.put("/users/<user_id>/assignment")
def set_assignment(user_id: str) -> Response:
    """包保: the regions (villages, a township…) and households a user covers. Their devices
    receive what enters and a delete for what leaves on their next pull."""
    caller, administers = _administrator()
    body = _body(AssignmentSet())
    with service.store().engine.connect() as conn:
        _user_row(conn, administers, user_id)
    _check_given(administers, body["region_ids"], body["household_ids"])
    _reassign(user_id, body["region_ids"], body["household_ids"], caller.user_id)
    with service.store().engine.connect() as conn:
        return jsonify(_user_json(_user_row(conn, administers, user_id), conn, masked=False))


@admin.post("/assignments/transfer")
def transfer_assignments() -> Response:
    """When a cadre leaves: everything ``from_user`` covers moves to ``to_user``.

    Two steps, in the safe order: ``to_user`` gets the union first, then ``from_user`` is
    emptied; a failure between them leaves households covered twice, never uncovered.
    """
    caller, administers = _administrator()
    body = _body(Transfer())
    if body["from_user"] == body["to_user"]:
        raise _invalid("to_user", "must be another user than from_user")
    with service.store().engine.connect() as conn:
        source = _user_row(conn, administers, body["from_user"])
        target = _user_row(conn, administers, body["to_user"])
        given, held = assignment_of(conn, source.id), assignment_of(conn, target.id)
    if not target.active:
        raise _invalid("to_user", "this user is deactivated")
    regions = sorted(set(held.region_ids) | set(given.region_ids))
    households_ = sorted(set(held.household_ids) | set(given.household_ids))
    _reassign(target.id, regions, households_, caller.user_id)
    _reassign(source.id, [], [], caller.user_id)
    _audit(
        caller,
        "assignments_transferred",
        "user",
        source.id,
        to_user=target.id,
        region_ids=list(given.region_ids),
        household_ids=list(given.household_ids),
    )
    return jsonify(
        {
            "from_user": {"id": source.id, "region_ids": [], "household_ids": []},
            "to_user": {"id": target.id, "region_ids": regions, "household_ids": households_},
            "moved": {
                "region_ids": list(given.region_ids),
                "household_ids": list(given.household_ids),
            },
        }
    )


# --- devices ---------------------------------------------------------------------------------


def _devices_query(user_id: str | None = None) -> Any:
    query = (
        select(
            Device.id,
            Device.user_id,
            Device.label,
            Device.created_at,
            Device.last_seen_at,
            Device.last_sync_at,
            Device.revoked_at,
            User.username,
            User.name,
        )
        .join(User, User.id == Device.user_id)
        .where(Device.id != service.SERVER_DEVICE)
        .order_by(Device.last_seen_at.desc(), Device.id)
    )
    return query.where(Device.user_id == user_id) if user_id else query


def _device_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "user_id": row.user_id,
        "username": row.username,
        "name": row.name,
        "created_at": utc_iso(row.created_at),
        "last_seen_at": utc_iso(row.last_seen_at),
        "last_sync_at": utc_iso(row.last_sync_at),
        "revoked_at": utc_iso(row.revoked_at),
        "revoked": row.revoked_at is not None,
    }


@admin.get("/devices")
def devices() -> Response:
    """Every device of the users the admin administers, last seen first (filter: user_id)."""
    _caller, administers = _administrator()
    with service.store().engine.connect() as conn:
        rows = conn.execute(_devices_query(request.args.get("user_id"))).all()
        owners = {u: administers.user(assignment_of(conn, u)) for u in {r.user_id for r in rows}}
    return jsonify({"devices": [_device_json(r) for r in rows if owners[r.user_id]]})


@admin.post("/devices/<device_id>/revoke")
def revoke_device(device_id: str) -> Response:
    """A lost phone: every later call with its token answers 401 device_revoked."""
    return jsonify(service.revoke_device(_admin(), device_id))


# --- visit policy and forms ------------------------------------------------------------------


@admin.get("/visit-policy")
def get_visit_policy() -> Response:
    """The policy in force (server-wide), and the categories of the admin's households, with
    their counts."""
    _caller, administers = _administrator()
    conditions = [~Household.deleted]
    if (visible := _in_scope(administers.scope)) is not None:
        conditions.append(visible)
    with service.store().engine.connect() as conn:
        rows = conn.execute(
            select(Household.category, func.count())
            .where(*conditions)
            .group_by(Household.category)
            .order_by(Household.category)
        ).all()
    policy = visit_policy()
    categories = [
        {
            "category": category,
            "households": count,
            "visit_policy": policy["categories"].get(category or "", policy["default"]),
        }
        for category, count in rows
    ]
    return jsonify({"policy": policy, "categories": categories})


@admin.put("/visit-policy")
def put_visit_policy() -> Response:
    """Replace the policy (``flagged``, ``categories``, ``default``); every active household's
    visit_policy is derived anew by it, in the same transaction. Server-wide: an admin of every
    county's."""
    caller = _everything()
    request.max_content_length = BODY_MAX_BYTES
    payload = checked_json(request.get_json(silent=True))
    try:
        policy = check_visit_policy(payload)
    except ValueError as exc:
        raise _invalid("policy", str(exc)) from None
    return jsonify(save_visit_policy(policy, caller.user_id))
