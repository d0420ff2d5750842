"""The sync core's rules (CONTRACT §5–§7), each pinned by a test that fails when it breaks.

Written against the survivors of a mutation test (docs/mutation.md): what the engine trusts
of a phone's clock, which device wins a concurrent edit, how a re-sent or re-created op is
answered, and what the op envelope accepts. The engine-level tests run on the in-memory
store (fast enough for mutmut to run them per mutant); those a phone can observe run again
over HTTP on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.admin.accounts import reassign
from sync import engine
from sync.effective import (
    SKEW_TOLERANCE,
    effective_hlc,
    effective_visit_time,
    hlc_of,
    visit_time_problem,
)
from sync.errors import DeviceRevoked, ValidationFailed
from sync.hlc import ZERO, Clock, HLCError, clamp, format_hlc, parse_hlc
from sync.ops import MAX_DEPTH, MAX_SEQ, parse_ops
from sync.records import MAX_YEAR, MIN_YEAR
from sync.scope import Scope
from sync.store import DeviceState, MemoryStore, Record
from tests.county import County, Device
from tests.test_reports import set_clock

EVERYTHING = Scope(True, frozenset(), frozenset(), frozenset(), "all")
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
HOUSEHOLD = "h-1"
#: when the phone recorded the visits of visit_data(): at T0, half an hour after the visit
RECORDED = hlc_of(T0)
SHANGHAI = timezone(timedelta(hours=8))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hlc_at(seconds: float) -> str:
    return hlc_of(at(seconds))


# The engine on the in-memory store.


def new_store(*devices: DeviceState) -> MemoryStore:
    store = MemoryStore()
    with store.write() as txn:
        household = {"village_id": "v", "head_name": "汪德明", "phone": "13900000000"}
        txn.insert_records(
            [Record("household", HOUSEHOLD, txn.allocate_version(), False, household, "v", "h-1")]
        )
        for device in devices:
            txn.save_device(device)
    return store


def device(device_id: str, registered: float = 0) -> DeviceState:
    """A device registered ``registered`` seconds after T0: its floor is the server's hlc then."""
    return DeviceState(device_id, "u-" + device_id, False, floor_hlc=hlc_at(registered))


def op(
    seq: int, action: str, type_: str, id_: str, data: dict[str, Any], hlc: str, **extra: Any
) -> dict[str, Any]:
    return {
        "op_id": str(uuid.uuid4()),
        "device_seq": seq,
        "hlc": hlc,
        "action": action,
        "type": type_,
        "id": id_,
        "base_version": extra.pop("base_version", None),
        "data": data,
        **extra,
    }


def visit_data(**changes: Any) -> dict[str, Any]:
    return {
        "household_id": HOUSEHOLD,
        "visited_at": "2026-11-24T08:30:00+08:00",
        "mode": "home",
        **changes,
    }


def push(
    store: MemoryStore,
    device_id: str,
    ops: list[dict[str, Any]],
    received: datetime,
    device_time: datetime | None = None,
    **context: Any,
) -> list[dict[str, Any]]:
    """Push at server time ``received``, the server's hlc being that time; a supervisor who
    may write everywhere unless ``context`` says otherwise."""
    ctx = engine.PushContext(
        **{
            "device_id": device_id,
            "user_id": "u-" + device_id,
            "scope": EVERYTHING,
            "received_at": received,
            "server_hlc": hlc_of(received),
            "role": "supervisor",
            "device_time": device_time,
            **context,
        }
    )
    return engine.push(store, ctx, parse_ops(ops, device_id)).results


def effective_hlcs(store: MemoryStore) -> dict[str, str]:
    return {logged.device_id: logged.effective_hlc for logged in store.all_ops()}


def phone_of(store: MemoryStore) -> Any:
    household = store.record("household", HOUSEHOLD)
    assert household is not None
    return household.data["phone"]


ID_ORDERS = pytest.mark.parametrize(
    ("earlier", "later"), [("phone-z", "phone-a"), ("phone-a", "phone-z")]
)


@ID_ORDERS
def test_skewed_clocks_the_later_effective_time_wins_whatever_the_device_ids(earlier, later):
    store = new_store(device(earlier), device(later))
    base = store.head_version()
    # ``earlier``'s clock runs two hours fast: its edit is clamped to when the server got it
    fast = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, hlc_at(7210))
    assert push(store, earlier, [fast | {"base_version": base}], at(10))[0]["status"] == "applied"
    # ``later``'s clock runs three minutes slow: its edit, made five minutes in, says minute 2
    slow = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000002"}, hlc_at(120))
    result = push(store, later, [slow | {"base_version": base}], at(300))[0]
    assert effective_hlcs(store) == {earlier: hlc_at(10), later: hlc_at(120)}
    assert phone_of(store) == "13900000002"
    assert result["status"] == "conflict"  # concurrent, and kept visible


@ID_ORDERS
def test_a_device_cannot_claim_a_time_before_its_registration(earlier, later):
    store = new_store(device(earlier, registered=0), device(later, registered=3600))
    base = store.head_version()
    honest = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, hlc_at(1800))
    push(store, earlier, [honest | {"base_version": base}], at(7200))
    at_1970 = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000002"}, format_hlc(1000))
    push(store, later, [at_1970 | {"base_version": base}], at(7260))
    assert effective_hlcs(store)[later] == hlc_at(3600)  # its registration, not 1970
    assert phone_of(store) == "13900000002"  # registered after the other edit was made


def test_a_device_cannot_claim_a_time_before_its_own_previous_op():
    store = new_store(device("phone-a"))
    first = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, hlc_at(600))
    second = op(2, "update", "household", HOUSEHOLD, {"phone": "13900000002"}, hlc_at(60))
    push(store, "phone-a", [first, second], at(900))
    assert [logged.effective_hlc for logged in store.all_ops()] == [hlc_at(600), hlc_at(600)]


def test_recreating_a_record_id_with_other_data_is_rejected_as_conflict():
    store = new_store(device("phone-a"), device("phone-b"))
    visit_id = str(uuid.uuid4())
    created = push(
        store, "phone-a", [op(1, "create", "visit", visit_id, visit_data(), RECORDED)], at(0)
    )
    other = op(1, "create", "visit", visit_id, visit_data(mode="phone"), RECORDED)
    result = push(store, "phone-b", [other], at(10))[0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "conflict"
    stored = store.record("visit", visit_id)
    assert stored is not None and stored.data["mode"] == "home"
    assert stored.version == created[0]["version"]


def test_recreating_a_record_id_with_the_same_data_is_a_duplicate_of_the_first():
    store = new_store(device("phone-a"), device("phone-b"))
    visit_id = str(uuid.uuid4())
    created = push(
        store, "phone-a", [op(1, "create", "visit", visit_id, visit_data(), RECORDED)], at(0)
    )
    again = push(
        store, "phone-b", [op(1, "create", "visit", visit_id, visit_data(), RECORDED)], at(5)
    )
    version = created[0]["version"]
    assert again == [{"op_id": again[0]["op_id"], "status": "duplicate", "version": version}]


def test_a_resent_rejected_op_stays_rejected_with_its_first_error():
    store = new_store(device("phone-a"))
    bad = op(1, "void", "visit", str(uuid.uuid4()), {"reason": "录错了户"}, hlc_at(0))
    first = push(store, "phone-a", [bad], at(0))[0]
    assert first["status"] == "rejected" and first["error"]["code"] == "not_found"
    again = push(store, "phone-a", [bad], at(60))[0]
    assert again == first
    assert len(store.all_ops()) == 1  # logged once


def test_an_op_id_reused_with_another_payload_is_rejected_as_conflict():
    store = new_store(device("phone-a"))
    first = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, ZERO)
    push(store, "phone-a", [first], at(0))
    reused = first | {"device_seq": 2, "data": {"phone": "13900000002"}}
    result = push(store, "phone-a", [reused], at(10))[0]
    assert result == {
        "op_id": first["op_id"],
        "status": "rejected",
        "error": {"code": "conflict", "message": "op_id already used with another payload"},
    }


def test_an_op_at_a_device_seq_already_used_is_rejected_as_conflict():
    store = new_store(device("phone-a"))
    push(store, "phone-a", [op(1, "update", "household", HOUSEHOLD, {"phone": "1"}, ZERO)], at(0))
    late = op(1, "update", "household", HOUSEHOLD, {"phone": "2"}, ZERO)
    result = push(store, "phone-a", [late], at(10))[0]
    assert result["error"] == {"code": "conflict", "message": "device_seq already used"}


def test_a_record_created_in_an_archived_household_is_flagged_for_review():
    store = new_store(device("phone-a"))
    insert(store, "household", "h-3", {"village_id": "v", "status": "archived"}, "v")
    person = {"household_id": "h-3", "name": "汪小明"}
    push(store, "phone-a", [op(1, "create", "person", OTHER_VISIT, person, ZERO)], at(0))
    created = store.record("person", OTHER_VISIT)
    assert created is not None and created.data["review"] == ["household_archived"]


def test_a_revoked_or_unknown_device_cannot_push():
    store = new_store(DeviceState("phone-r", "u-phone-r", True))
    edit = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, ZERO)
    for device_id in ("phone-r", "phone-unknown"):
        with pytest.raises(DeviceRevoked):
            push(store, device_id, [edit], at(0))
    assert store.all_ops() == []


def test_an_op_whose_data_is_no_object_is_rejected_not_a_crash():
    store = new_store(device("phone-a"))
    edit = op(1, "update", "household", HOUSEHOLD, ["phone"], ZERO)
    result = push(store, "phone-a", [edit], at(0))[0]
    assert result["error"]["details"]["fields"] == {"data": ["must be an object"]}


def test_the_same_flags_in_another_order_are_no_conflict():
    """Flags are compared as sets: each write is normalised (sorted, once) before the merge."""
    store = new_store(device("phone-a"), device("phone-b"))
    person = {"household_id": HOUSEHOLD, "name": "汪德明", "flags": []}
    base = insert(store, "person", "p-1", person, "v")
    results = []
    for phone, flags in (
        ("phone-a", ["sick", "elderly", "sick"]),
        ("phone-b", ["elderly", "sick"]),
    ):
        edit = op(1, "update", "person", "p-1", {"flags": flags}, ZERO, base_version=base)
        results += push(store, phone, [edit], at(0))
    assert [r["status"] for r in results] == ["applied", "applied"]
    assert [r for r in store.all_records() if r.type == "conflict"] == []
    stored = store.record("person", "p-1")
    assert stored is not None and stored.data["flags"] == ["elderly", "sick"]


def test_a_resent_applied_op_is_a_duplicate_with_its_version():
    store = new_store(device("phone-a"))
    visit = op(1, "create", "visit", str(uuid.uuid4()), visit_data(), hlc_at(0))
    first = push(store, "phone-a", [visit], at(0))[0]
    again = push(store, "phone-a", [visit], at(60))[0]
    assert again == {"op_id": visit["op_id"], "status": "duplicate", "version": first["version"]}


def insert(store: MemoryStore, type_: str, id_: str, data: dict[str, Any], village: str) -> int:
    with store.write() as txn:
        version = txn.allocate_version()
        household = data.get("household_id", id_)
        txn.insert_records([Record(type_, id_, version, False, data, village, household)])
    return version


OTHER_VISIT, OUTSIDE_VISIT, UNKNOWN = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
ONLY_V = Scope(False, frozenset(), frozenset({"v"}), frozenset(), "v")


def rejection_store() -> MemoryStore:
    """h-1 in village v (the writer's), h-2 in village w with a visit."""
    store = new_store(device("phone-a"))
    insert(store, "household", "h-2", {"village_id": "w", "head_name": "李四"}, "w")
    insert(store, "visit", OUTSIDE_VISIT, visit_data(household_id="h-2"), "w")
    return store


REJECTIONS = {
    "an unknown household": (
        op(1, "create", "visit", OTHER_VISIT, visit_data(household_id="h-9"), RECORDED),
        {
            "code": "validation_failed",
            "message": "unknown household",
            "details": {"fields": {"data.household_id": ["no such household"]}},
        },
    ),
    "a household outside the scope": (
        op(1, "create", "visit", OTHER_VISIT, visit_data(household_id="h-2"), RECORDED),
        {"code": "forbidden", "message": "household outside your assigned villages and households"},
    ),
    "a correction of an unknown visit": (
        op(1, "create", "visit", OTHER_VISIT, visit_data(corrects=UNKNOWN), RECORDED),
        {
            "code": "validation_failed",
            "message": "corrects an unknown visit",
            "details": {"fields": {"data.corrects": ["no such visit of this household"]}},
        },
    ),
    "a correction of another household's visit": (
        op(1, "create", "visit", OTHER_VISIT, visit_data(corrects=OUTSIDE_VISIT), RECORDED),
        {
            "code": "validation_failed",
            "message": "corrects an unknown visit",
            "details": {"fields": {"data.corrects": ["no such visit of this household"]}},
        },
    ),
    "a void of an unknown visit": (
        op(1, "void", "visit", UNKNOWN, {"reason": "录错了"}, ZERO),
        {"code": "not_found", "message": f"no visit {UNKNOWN}"},
    ),
    "a void outside the scope": (
        op(1, "void", "visit", OUTSIDE_VISIT, {"reason": "录错了"}, ZERO),
        {"code": "forbidden", "message": "visit outside your assigned villages and households"},
    ),
    "an update of an unknown record": (
        op(1, "update", "household", "h-9", {"phone": "13900000001"}, ZERO),
        {"code": "not_found", "message": "no household h-9"},
    ),
    "an update outside the scope": (
        op(1, "update", "household", "h-2", {"phone": "13900000001"}, ZERO),
        {"code": "forbidden", "message": "household outside your assigned villages and households"},
    ),
}


@pytest.mark.parametrize(("raw", "error"), REJECTIONS.values(), ids=REJECTIONS.keys())
def test_an_op_that_can_never_apply_is_rejected_with_its_code_message_and_fields(raw, error):
    store = rejection_store()
    result = push(store, "phone-a", [raw], at(0), scope=ONLY_V)[0]
    assert result == {"op_id": raw["op_id"], "status": "rejected", "error": error}
    assert [logged.status for logged in store.all_ops()] == ["rejected"]


def test_answers_that_do_not_fit_the_form_reject_the_visit_with_each_answers_messages():
    store = new_store(device("phone-a"))
    visit = op(1, "create", "visit", OTHER_VISIT, visit_data(answers={"q": 5}), RECORDED)
    result = push(
        store, "phone-a", [visit], at(0), check_answers=lambda *_: {"q": ["wrong_type:text"]}
    )[0]
    assert result["error"] == {
        "code": "validation_failed",
        "message": "answers do not fit the form",
        "details": {"fields": {"data.answers.q": ["wrong_type:text"]}},
    }


def test_answers_are_checked_with_the_visit_time_the_phone_recorded():
    store = new_store(device("phone-a"))
    data = visit_data(answers={"q": 5})
    seen = []
    visit = op(1, "create", "visit", OTHER_VISIT, data, RECORDED)
    push(store, "phone-a", [visit], at(0), check_answers=lambda *args: seen.append(args) or {})
    assert seen == [(None, None, {"q": 5}, "2026-11-24T08:30:00+08:00", "h-1", frozenset())]


def test_a_recreated_id_names_the_record_in_its_conflict():
    store = new_store(device("phone-a"))
    insert(store, "visit", OTHER_VISIT, visit_data(), "v")
    result = push(
        store,
        "phone-a",
        [op(1, "create", "visit", OTHER_VISIT, visit_data(mode="phone"), RECORDED)],
        at(0),
    )
    assert result[0]["error"] == {
        "code": "conflict",
        "message": f"visit {OTHER_VISIT} already exists with other data",
    }


def test_the_server_adds_who_where_and_when_to_a_visit():
    store = new_store(device("phone-a"))
    photo = "ab" * 32
    data = visit_data(answers={"photo": photo, "note": "好"})
    visit = op(1, "create", "visit", OTHER_VISIT, data, RECORDED)
    push(store, "phone-a", [visit], at(3600), device_time=at(3600))
    stored = store.record("visit", OTHER_VISIT)
    added = {
        "photos": [photo],
        "visitor_id": "u-phone-a",
        "device_id": "phone-a",
        "visited_at_effective": "2026-11-24T08:30:00+08:00",
        "received_at": "2026-11-24T02:00:00+00:00",
        "voided": False,
        "void_reason": None,
        "review": [],
    }
    assert stored is not None and {k: stored.data.get(k, "missing") for k in added} == added


def test_an_edit_of_a_person_in_an_active_household_is_not_flagged_archived():
    store = new_store(device("phone-a"))
    insert(store, "person", "p-1", {"household_id": HOUSEHOLD, "name": "汪德明"}, "v")
    push(store, "phone-a", [op(1, "update", "person", "p-1", {"notes": "高血压"}, ZERO)], at(0))
    person = store.record("person", "p-1")
    assert person is not None and person.data.get("review", []) == []


def test_a_cadre_may_keep_the_status_the_merge_shows_after_concurrent_edits():
    """What a writer saw of a least_closed field is decided by that rule, as the merge does:
    after concurrent in_progress (earlier) and resolved (later), the problem shows in_progress,
    and a cadre who saw that may write it again: it is no step back."""
    store = new_store(device("phone-x"), device("phone-y"), device("phone-z"))
    problem = {
        "household_id": HOUSEHOLD,
        "category": "housing",
        "description": "漏雨",
        "status": "open",
    }
    base = insert(store, "problem", "q-1", problem, "v")
    for phone, status, second in (("phone-x", "in_progress", 10), ("phone-y", "resolved", 20)):
        edit = op(
            1, "update", "problem", "q-1", {"status": status}, hlc_at(second), base_version=base
        )
        push(store, phone, [edit], at(second))
    seen = store.head_version()
    again = op(
        1, "update", "problem", "q-1", {"status": "in_progress"}, hlc_at(30), base_version=seen
    )
    result = push(store, "phone-z", [again], at(30), role="cadre")[0]
    assert result["status"] == "applied", result


# The op envelope (sync/ops.py).


def unacknowledged(*seqs: Any) -> dict[str, list[str]]:
    """The request-level problems of a push whose ops carry these device_seqs."""
    edit = {"phone": "13900000001"}
    raw = [op(seq, "update", "household", HOUSEHOLD, edit, ZERO) for seq in seqs]
    with pytest.raises(ValidationFailed) as failed:
        parse_ops(raw, "phone-a")
    return failed.value.fields


@pytest.mark.parametrize("seq", [1, MAX_SEQ])
def test_a_device_seq_runs_from_1_to_what_javascript_holds_exactly(seq):
    edit = op(seq, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, ZERO)
    assert parse_ops([edit], "phone-a")[0].device_seq == seq


@pytest.mark.parametrize("seq", [0, -1, MAX_SEQ + 1, True, 1.0, "1", None])
def test_a_device_seq_out_of_range_fails_the_whole_push(seq):
    assert unacknowledged(1, seq) == {"ops[1].device_seq": ["must be a positive integer"]}


@pytest.mark.parametrize(
    ("ops", "fields"),
    [
        ({"op": 1}, {"ops": ["must be a list of ops"]}),
        ([["op"]], {"ops[0]": ["must be an object"]}),
    ],
)
def test_a_push_whose_ops_are_not_objects_in_a_list_fails_whole(ops, fields):
    with pytest.raises(ValidationFailed) as failed:
        parse_ops(ops, "phone-a")
    assert failed.value.fields == fields


def test_a_device_seq_twice_in_one_batch_fails_the_whole_push():
    assert unacknowledged(1, 2, 1) == {"ops[2].device_seq": ["appears twice in this batch"]}


def test_an_op_of_another_type_naming_a_correction_is_rejected_not_a_crash():
    store = new_store(device("phone-a"))
    crafted = op(1, "update", "household", HOUSEHOLD, {"corrects": UNKNOWN}, ZERO)
    result = push(store, "phone-a", [crafted], at(0))[0]
    assert result["status"] == "rejected"
    assert result["error"]["details"]["fields"] == {"data.corrects": ["unknown field"]}


def problems(**fields: Any) -> dict[str, list[str]] | None:
    raw = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, ZERO) | fields
    return parse_ops([raw], "phone-a")[0].problems


def test_a_create_needs_a_uuid_id():
    data = visit_data()
    assert problems(action="create", type="visit", id="visit-1", data=data) == {
        "id": ["must be a UUID"]
    }
    assert problems(action="create", type="visit", id=str(uuid.uuid4()), data=data) is None


def nested(levels: int, container: type = list) -> Any:
    """``levels`` lists (or objects) one inside the other."""
    value: Any = 1
    for _ in range(levels):
        value = [value] if container is list else {"x": value}
    return value


def test_an_op_nested_too_deep_is_rejected_and_logged_without_the_deep_parts():
    data = visit_data(answers=nested(30), notes="好")
    raw = op(1, "create", "visit", OTHER_VISIT, data, RECORDED, extra=nested(30), fine=[1])
    parsed = parse_ops([raw], "phone-a")[0]
    message = [f"nested deeper than {MAX_DEPTH} levels"]
    assert parsed.problems == {"data.answers": message, "extra": message}
    logged = json.loads(parsed.payload)
    assert logged["data"] == {**data, "answers": None}
    assert (logged["extra"], logged["fine"], logged["op_id"]) == (None, [1], raw["op_id"])


@pytest.mark.parametrize("record_id", ["h", "h-1", "x" * 64, str(uuid.uuid4())])
def test_an_update_may_name_a_server_id_of_up_to_64_characters(record_id):
    assert problems(id=record_id) is None


@pytest.mark.parametrize("record_id", ["", "x" * 65, 17, None])
def test_an_update_refuses_an_empty_long_or_non_string_id(record_id):
    assert problems(id=record_id) == {"id": ["must be a UUID"]}


@pytest.mark.parametrize("reason", ["", " ", " \t\n", None, 5, "x" * 501])
def test_a_void_needs_a_reason_that_is_not_blank_nor_too_long(reason):
    found = problems(action="void", type="visit", id=str(uuid.uuid4()), data={"reason": reason})
    assert found == {"data.reason": ["a void needs a reason"]}


@pytest.mark.parametrize("reason", ["x", " 录错了户 ", "x" * 500])
def test_a_void_with_a_reason_is_well_formed(reason):
    assert (
        problems(action="void", type="visit", id=str(uuid.uuid4()), data={"reason": reason}) is None
    )


@pytest.mark.parametrize("base", [None, 0, 1, 2**53])
def test_base_version_is_null_or_a_version_from_zero(base):
    assert problems(base_version=base) is None


@pytest.mark.parametrize("base", [-1, True, 1.0, "3"])
def test_base_version_refuses_negatives_and_non_integers(base):
    assert problems(base_version=base) == {"base_version": ["must be a version number or null"]}


@pytest.mark.parametrize("base", [True, 1.0, "3"])
def test_an_op_whose_base_version_is_no_integer_carries_none(base):
    raw = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, ZERO)
    assert parse_ops([raw | {"base_version": base}], "phone-a")[0].base_version is None


ENVELOPE_PROBLEMS = {
    "an hlc that is none": (
        {"hlc": "1763971200000"},
        "hlc",
        "must be an hlc like 001763971200000-0000",
    ),
    "an unknown type": (
        {"type": "village"},
        "type",
        "must be one of household, person, visit, problem, measure",
    ),
    "an action the type lacks": ({"action": "delete"}, "action", "household allows update"),
    "data that is no object": ({"data": ["phone"]}, "data", "must be an object"),
    "an update of no field": ({"data": {}}, "data", "an update changes at least one field"),
    "an update without data": ({"data": None}, "data", "must be an object"),
    "a type that is no string": (
        {"type": ["household"]},
        "type",
        "must be one of household, person, visit, problem, measure",
    ),
    "an action of several the type lacks": (
        {"type": "person", "action": "delete"},
        "action",
        "person allows create, update",
    ),
}


@pytest.mark.parametrize(
    ("fields", "name", "message"), ENVELOPE_PROBLEMS.values(), ids=ENVELOPE_PROBLEMS.keys()
)
def test_an_op_envelope_problem_names_the_field_and_says_what_is_wrong(fields, name, message):
    assert problems(**fields) == {name: [message]}


def test_an_op_without_data_changes_nothing():
    raw = op(1, "update", "household", HOUSEHOLD, {}, ZERO)
    del raw["data"]
    assert parse_ops([raw], "phone-a")[0].problems == {
        "data": ["an update changes at least one field"]
    }


def test_the_logged_payload_is_canonical_json_that_keeps_chinese_as_is():
    raw = op(1, "update", "household", HOUSEHOLD, {"head_name": "汪德明"}, ZERO)
    payload = parse_ops([dict(reversed(raw.items()))], "phone-a")[0].payload
    assert payload == json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert "汪德明" in payload


@pytest.mark.parametrize("container", [list, dict])
@pytest.mark.parametrize(("levels", "refused"), [(MAX_DEPTH, False), (MAX_DEPTH + 1, True)])
def test_an_op_may_nest_up_to_max_depth_levels(levels, refused, container):
    """The op object is level 1: a field holding n nested lists or objects reaches n + 1."""
    found = problems(extra=nested(levels - 1, container))
    assert found == ({"extra": [f"nested deeper than {MAX_DEPTH} levels"]} if refused else None)


@pytest.mark.parametrize(("levels", "refused"), [(MAX_DEPTH, False), (MAX_DEPTH + 1, True)])
def test_data_may_nest_up_to_max_depth_levels_counted_from_the_op(levels, refused):
    """The op is level 1, its data level 2: a data field holding n lists reaches n + 2."""
    found = problems(data={"phone": nested(levels - 2)}) or {}
    too_deep = [f"nested deeper than {MAX_DEPTH} levels"]
    assert (found.get("data.phone") == too_deep) is refused


# Effective time (sync/effective.py, sync/hlc.py).


@pytest.mark.parametrize(
    ("value", "low", "high", "clamped"),
    [
        ("001-0", "000-0", "002-0", "001-0"),
        ("000-0", "001-0", "002-0", "001-0"),
        ("003-0", "001-0", "002-0", "002-0"),
        ("001-0", "002-0", "001-5", "001-5"),  # bounds cross: the server's wins
    ],
)
def test_clamp_moves_a_value_into_its_bounds(value, low, high, clamped):
    assert clamp(value, low, high) == clamped


@pytest.mark.parametrize(
    ("claimed", "floor", "previous", "now", "effective"),
    [
        (60, 0, None, 120, 60),  # an honest clock is taken at its word
        (30, 40, None, 120, 40),  # no earlier than the device's registration
        (30, 0, 50, 120, 50),  # no earlier than its own previous op
        (30, 50, 40, 120, 50),  # the later of the two lower bounds
        (30, 40, 50, 120, 50),
        (500, 0, None, 120, 120),  # no later than the server's clock
        (30, 200, None, 120, 120),  # a floor ahead of the server: the server's clock wins
    ],
)
def test_effective_hlc_is_the_claim_clamped_by_floor_previous_and_server(
    claimed, floor, previous, now, effective
):
    previous_hlc = ZERO if previous is None else hlc_at(previous)
    assert effective_hlc(hlc_at(claimed), hlc_at(floor), previous_hlc, hlc_at(now)) == hlc_at(
        effective
    )


def test_hlc_errors_say_what_was_wrong():
    with pytest.raises(HLCError, match=r"^hlc out of range: -1, 0$"):
        format_hlc(-1)
    with pytest.raises(HLCError, match=r"^not an hlc: 'x'$"):
        parse_hlc("x")


def test_a_clock_without_a_physical_source_reads_the_system_clock_in_milliseconds():
    before = int(time.time() * 1000)
    millis, _ = parse_hlc(Clock().now())
    assert before <= millis <= int(time.time() * 1000)


def test_hlc_of_is_the_moment_in_milliseconds():
    assert hlc_of(datetime(2025, 11, 24, 8, 0, 0, 1500, tzinfo=UTC)) == "001763971200001-0000"


VISITED = datetime(2026, 11, 24, 9, 30, tzinfo=SHANGHAI)
RECEIVED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def test_a_visit_time_keeps_the_phones_utc_offset():
    phone_now = RECEIVED + timedelta(hours=2)
    corrected, changed = effective_visit_time(VISITED, phone_now, RECEIVED)
    assert changed and corrected == VISITED - timedelta(hours=2)
    assert corrected.isoformat() == "2026-11-24T07:30:00+08:00"


def test_a_visit_time_clamped_to_receipt_keeps_the_phones_utc_offset():
    corrected, changed = effective_visit_time(VISITED + timedelta(hours=5), None, RECEIVED)
    assert changed and corrected.isoformat() == "2026-11-24T10:00:00+08:00"


@pytest.mark.parametrize("sign", [1, -1])
def test_a_skew_of_exactly_ten_minutes_is_taken_as_right(sign):
    phone_now = RECEIVED - sign * SKEW_TOLERANCE
    assert effective_visit_time(VISITED, phone_now, RECEIVED) == (VISITED, False)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_skew_just_over_ten_minutes_is_corrected(sign):
    skew = sign * (SKEW_TOLERANCE + timedelta(microseconds=1))
    corrected, changed = effective_visit_time(VISITED, RECEIVED - skew, RECEIVED)
    assert changed and corrected == VISITED + skew


def test_a_visit_without_a_device_time_is_not_moved():
    assert effective_visit_time(VISITED, None, RECEIVED) == (VISITED, False)


@pytest.mark.parametrize("visited_year", [MIN_YEAR, MAX_YEAR])
@pytest.mark.parametrize("device_year", [MIN_YEAR, MAX_YEAR])
@pytest.mark.parametrize("received_year", [MIN_YEAR, MAX_YEAR])
def test_any_skew_between_times_of_the_allowed_years_shifts_without_overflow(
    visited_year, device_year, received_year
):
    """Why effective_visit_time needs no OverflowError branch: parse_offset_datetime keeps
    every time between MIN_YEAR and MAX_YEAR, and the server's clock is one such time."""
    first = datetime(visited_year, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    last = datetime(device_year, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12)))
    received = datetime(received_year, 6, 30, tzinfo=UTC)
    for visited, phone_now in ((first, last), (last, first)):
        corrected, _ = effective_visit_time(visited, phone_now, received)
        assert corrected <= received and corrected.tzinfo == visited.tzinfo


# Over HTTP, as a phone sees it (SQLite and PostgreSQL).


def fake_server_clock(county: County, moment: datetime) -> None:
    """The server's clock and hlc at ``moment`` (the real clock would run ahead of it)."""
    set_clock(county.app, moment.isoformat())
    county.app.extensions["zoufang_clock"] = Clock(physical=lambda: 0)


def millis(hlc: str) -> float:
    """Seconds after T0 of an hlc the server stamped (its counter aside: the server's hlc
    counts up within a millisecond each time it is read)."""
    return (parse_hlc(hlc)[0] - parse_hlc(hlc_at(0))[0]) / 1000


def household_version(phone: Device, household_id: str) -> int:
    return int(next(r for r in phone.pull_all() if r["id"] == household_id)["version"])


def pushed(phone: Device, county: County, ops: list[dict[str, Any]], moment: datetime) -> Any:
    set_clock(county.app, moment.isoformat())
    response = phone.push(ops, device_time=moment.isoformat())
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def test_over_http_the_later_effective_time_wins_not_the_greater_device_id(any_county):
    fake_server_clock(any_county, T0)
    one, two = any_county.device("cadre_a"), any_county.device("cadre_b")
    high, low = sorted([one, two], key=lambda phone: phone.device_id, reverse=True)
    hid = any_county.households["h1"]
    base = household_version(low, hid)
    fast = high.op("update", "household", hid, {"phone": "13700000001"}, base, hlc=hlc_at(7210))
    assert pushed(high, any_county, [fast], at(10))[0]["status"] == "applied"
    slow = low.op("update", "household", hid, {"phone": "13700000002"}, base, hlc=hlc_at(120))
    assert pushed(low, any_county, [slow], at(300))[0]["status"] == "conflict"
    records = high.pull_all()
    assert next(r for r in records if r["id"] == hid)["data"]["phone"] == "13700000002"
    (conflict,) = [r["data"] for r in records if r["type"] == "conflict"]
    assert (conflict["kept"]["by"], millis(conflict["kept"]["hlc"])) == (low.device_id, 120)
    assert [(lost["by"], millis(lost["hlc"])) for lost in conflict["lost"]] == [
        (high.device_id, 10)  # clamped to when the server received it
    ]


def test_over_http_a_device_registered_later_cannot_claim_an_earlier_time(any_county):
    fake_server_clock(any_county, T0)
    early = any_county.device("cadre_a")
    set_clock(any_county.app, at(3600).isoformat())
    late = any_county.device("cadre_b")
    hid = any_county.households["h1"]
    base = household_version(early, hid)
    honest = early.op("update", "household", hid, {"phone": "13700000001"}, base, hlc=hlc_at(1800))
    pushed(early, any_county, [honest], at(7200))
    at_1970 = late.op("update", "household", hid, {"phone": "13700000002"}, base, hlc=ZERO)
    pushed(late, any_county, [at_1970], at(7260))
    records = early.pull_all()
    assert next(r for r in records if r["id"] == hid)["data"]["phone"] == "13700000002"
    (conflict,) = [r["data"] for r in records if r["type"] == "conflict"]
    assert (conflict["kept"]["by"], millis(conflict["kept"]["hlc"])) == (late.device_id, 3600)


def test_over_http_a_visit_id_recreated_with_other_data_is_rejected_as_conflict(any_county):
    a, b = any_county.device("cadre_a"), any_county.device("cadre_b")
    first = a.visit(any_county.households["h1"])
    assert a.push([first]).get_json()["results"][0]["status"] == "applied"
    other = b.op("create", "visit", first["id"], {**first["data"], "mode": "phone"})
    result = b.push([other]).get_json()["results"][0]
    assert (result["status"], result["error"]["code"]) == ("rejected", "conflict")
    stored = next(r for r in b.pull_all() if r["id"] == first["id"])
    assert stored["data"]["mode"] == "home"


def test_over_http_a_resent_rejected_op_stays_rejected(any_county):
    a = any_county.device("cadre_a")
    outside = a.visit(any_county.households["h4"])  # 下村 is not cadre_a's
    first = a.push([outside]).get_json()
    again = a.push([outside]).get_json()
    assert first["results"] == again["results"]
    assert again["results"][0]["status"] == "rejected"
    assert again["results"][0]["error"]["code"] == "forbidden"
    assert again["next_seq"] == first["next_seq"] == 2


def test_over_http_a_create_with_a_server_style_id_is_rejected(any_county):
    a = any_county.device("cadre_a")
    visit = a.visit(any_county.households["h1"])
    visit["id"] = "visit-1"
    result = a.push([visit]).get_json()["results"][0]
    assert (result["status"], result["error"]["code"]) == ("rejected", "validation_failed")
    assert result["error"]["details"]["fields"] == {"id": ["must be a UUID"]}


def test_over_http_a_void_with_a_blank_reason_is_rejected_and_the_visit_kept(any_county):
    a = any_county.device("cadre_a")
    visit = a.visit(any_county.households["h1"])
    blank = a.op("void", "visit", visit["id"], {"reason": "   "})
    results = a.push([visit, blank]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert results[1]["error"]["details"]["fields"] == {"data.reason": ["a void needs a reason"]}
    stored = next(r for r in a.pull_all() if r["id"] == visit["id"])
    assert stored["data"]["voided"] is False


def test_over_http_an_update_with_base_version_zero_is_applied(any_county):
    a = any_county.device("cadre_a")
    hid = any_county.households["h1"]
    edit = a.op("update", "household", hid, {"notes": "新建档"}, 0)
    assert a.push([edit]).get_json()["results"][0]["status"] == "applied"


def test_over_http_a_corrected_visit_time_keeps_the_phones_offset(any_county):
    fake_server_clock(any_county, RECEIVED)
    a = any_county.device("cadre_a")
    visit = a.visit(any_county.households["h1"], visited_at=VISITED.isoformat())
    phone_now = RECEIVED + timedelta(hours=2)
    response = a.push([visit], device_time=phone_now.isoformat())
    assert response.get_json()["results"][0]["status"] == "applied"
    stored = next(r for r in a.pull_all() if r["id"] == visit["id"])["data"]
    assert stored["visited_at_effective"] == "2026-11-24T07:30:00+08:00"
    assert stored["visited_at"] == "2026-11-24T09:30:00+08:00"
    assert "clock_corrected" in stored["review"]


def test_over_http_a_scope_change_resends_nothing_the_device_already_holds(any_county):
    """cadre_c holds 下村 and h5 (包保); given 岭村, the village of h5, it gains nothing new."""
    c = any_county.device("cadre_c")
    held = {r["id"] for r in c.pull_all() if r["type"] == "household"}
    assert any_county.households["h5"] in held
    regions = any_county.regions
    with any_county.app.app_context():
        reassign(any_county.users["cadre_c"], [regions["lower"], regions["ridge"]], [], actor=None)
    changes = c.pull_all()
    assert [r for r in changes if r["type"] == "household"] == []
    assert {r["id"] for r in c.pull_all()} == set()


# The bounds of a visit's time (sync.effective.visit_time_problem), at their edges.

WEEK = timedelta(days=7)
TOLERANCE = timedelta(minutes=10)


def time_problem(
    visited: datetime, recorded: datetime, device_time: datetime | None = None
) -> str | None:
    return visit_time_problem(visited, hlc_of(recorded), device_time, T0, WEEK)


def test_a_visit_up_to_the_tolerance_after_its_recording_is_accepted_and_no_later():
    assert time_problem(T0 + TOLERANCE, T0) is None
    problem = time_problem(T0 + TOLERANCE + timedelta(seconds=1), T0)
    assert problem == "after the phone recorded the visit: a visit cannot be in the future"


def test_a_visit_up_to_the_backdate_bound_before_its_recording_is_accepted_and_no_earlier():
    assert time_problem(T0 - WEEK - TOLERANCE, T0) is None
    problem = time_problem(T0 - WEEK - TOLERANCE - timedelta(seconds=1), T0)
    assert problem == "more than 7 days before the phone recorded the visit"


def test_a_phone_behind_the_server_has_its_visit_moved_by_its_lag_before_the_bound():
    """Set to a month ago: its hlc is the server time it last saw; its visit of two days ago
    by its own clock is two days ago by the server's."""
    lag = timedelta(days=30)
    visited = T0 - lag - timedelta(days=2)
    assert time_problem(visited, T0 - timedelta(hours=1), device_time=T0 - lag) is None
    just_in_tolerance = T0 - TOLERANCE
    assert time_problem(visited, T0 - timedelta(hours=1), device_time=just_in_tolerance)


def test_a_phone_behind_by_just_the_tolerance_is_taken_as_right_and_not_moved():
    recorded = T0 - timedelta(hours=1)
    visited = recorded - WEEK - TOLERANCE - timedelta(minutes=5)
    assert time_problem(visited, recorded, device_time=T0 - TOLERANCE) is not None
    assert (
        time_problem(visited, recorded, device_time=T0 - TOLERANCE - timedelta(minutes=6)) is None
    )


def test_an_hlc_ahead_of_the_phones_clock_checks_only_the_future_bound():
    """A clock once set to 2035 and put right: its hlc stays ahead and dates nothing."""
    ahead = T0 + timedelta(days=3000)
    assert time_problem(T0 - timedelta(days=30), ahead, device_time=T0) is None
    at_tolerance = T0 + TOLERANCE
    assert time_problem(T0 - timedelta(days=30), at_tolerance, device_time=T0) is not None


def test_the_future_bound_holds_to_the_microsecond_in_the_last_years_allowed():
    """Times late in the years a visit may hold (to 2999) are some 3 × 10^16 microseconds
    from the epoch, past what a float holds exactly: the bounds count in integers."""
    recorded = datetime(2990, 6, 1, tzinfo=UTC)
    hlc = hlc_of(recorded)
    edge = recorded + TOLERANCE
    assert visit_time_problem(edge, hlc, None, recorded, WEEK) is None
    late = visit_time_problem(edge + timedelta(microseconds=1), hlc, None, recorded, WEEK)
    assert late == "after the phone recorded the visit: a visit cannot be in the future"


def test_an_hlc_past_year_9999_is_no_crash_and_the_visit_long_before_it():
    problem = visit_time_problem(T0, "999999999999999-0000", None, T0, WEEK)
    assert problem == "more than 7 days before the phone recorded the visit"


def _bounds_in_datetimes(
    visited: datetime, hlc: str, device_time: datetime | None, received: datetime, back: timedelta
) -> str | None:
    """The bounds as first written, in datetimes: the oracle of the integer version."""
    try:
        recorded = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=parse_hlc(hlc)[0])
    except OverflowError:
        recorded = datetime(9999, 1, 1, tzinfo=UTC)
    if visited > recorded + TOLERANCE:
        return "after the phone recorded the visit: a visit cannot be in the future"
    placed = visited
    if device_time is not None:
        behind = received - device_time
        if behind > TOLERANCE:
            placed = visited + behind
        elif recorded > device_time + TOLERANCE:
            return None
    if placed < recorded - back - TOLERANCE:
        return f"more than {back.days} days before the phone recorded the visit"
    return None


_OFFSETS = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_MOMENTS = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=_OFFSETS)
_STEP = st.integers(-2, 2).map(lambda us: timedelta(microseconds=us))
_SPAN = st.integers(-40 * 86_400_000_000, 40 * 86_400_000_000).map(
    lambda us: timedelta(microseconds=us)
)


@settings(max_examples=600, deadline=None)
@given(
    recorded=st.one_of(
        _SPAN.map(lambda d: int((T0 + d).timestamp() * 1000)), st.integers(0, 10**15 - 1)
    ),
    visited_edge=st.sampled_from(["future", "backdate", "near", "anywhere"]),
    device_edge=st.sampled_from(["none", "behind", "ahead", "near", "anywhere"]),
    back_days=st.integers(0, 60),
    step=_STEP,
    span=_SPAN,
    moment=_MOMENTS,
    offset=_OFFSETS,
)
def test_the_bounds_in_microseconds_say_what_the_datetimes_say(
    recorded, visited_edge, device_edge, back_days, step, span, moment, offset
):
    """At each edge to the microsecond (the tolerance after the recording, the backdate
    before it, a lag of just the tolerance, an hlc just ahead of the phone's clock)."""
    back = timedelta(days=back_days)
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=min(recorded, 2 * 10**14))
    visited = {
        "future": at + TOLERANCE + step,
        "backdate": at - back - TOLERANCE + step,
        "near": at + span,
        "anywhere": moment,
    }[visited_edge]
    device_time = {
        "none": None,
        "behind": T0 - TOLERANCE + step,
        "ahead": at - TOLERANCE + step,
        "near": T0 + span,
        "anywhere": moment,
    }[device_edge]
    if not datetime(1900, 1, 2, tzinfo=UTC) <= visited <= datetime(2999, 1, 1, tzinfo=UTC):
        return  # parse_offset_datetime keeps a visit's time within the years 1900-2999
    visited = visited.astimezone(offset)
    hlc = format_hlc(recorded)
    assert visit_time_problem(visited, hlc, device_time, T0, back) == _bounds_in_datetimes(
        visited, hlc, device_time, T0, back
    )
