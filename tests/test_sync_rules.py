"""The sync core's rules (CONTRACT §5–§7), each pinned by a test that fails when it breaks.

Written against the survivors of a mutation test (docs/mutation.md): what the engine trusts
of a phone's clock, which device wins a concurrent edit, how a re-sent or re-created op is
answered, and what the op envelope accepts. The engine-level tests run on the in-memory
store (fast enough for mutmut to run them per mutant); those a phone can observe run again
over HTTP on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sync import engine
from sync.effective import SKEW_TOLERANCE, effective_hlc, effective_visit_time, hlc_of
from sync.hlc import ZERO, Clock, clamp, format_hlc, parse_hlc
from sync.ops import parse_ops
from sync.records import MAX_YEAR, MIN_YEAR
from sync.scope import Scope
from sync.store import DeviceState, MemoryStore, Record
from tests.county import County, Device
from tests.test_reports import set_clock

EVERYTHING = Scope(True, frozenset(), frozenset(), frozenset(), "all")
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
HOUSEHOLD = "h-1"
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
        "visited_at": "2026-11-24T09:30:00+08:00",
        "mode": "home",
        **changes,
    }


def push(
    store: MemoryStore,
    device_id: str,
    ops: list[dict[str, Any]],
    received: datetime,
    device_time: datetime | None = None,
) -> list[dict[str, Any]]:
    """Push at server time ``received``, the server's hlc being that time."""
    ctx = engine.PushContext(
        device_id, "u-" + device_id, EVERYTHING, received, hlc_of(received), "supervisor",
        device_time=device_time,
    )  # fmt: skip
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
        store, "phone-a", [op(1, "create", "visit", visit_id, visit_data(), ZERO)], at(0)
    )
    other = op(1, "create", "visit", visit_id, visit_data(mode="phone"), ZERO)
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
        store, "phone-a", [op(1, "create", "visit", visit_id, visit_data(), ZERO)], at(0)
    )
    again = push(store, "phone-b", [op(1, "create", "visit", visit_id, visit_data(), ZERO)], at(5))
    assert again == [{"op_id": again[0]["op_id"], "status": "duplicate", **_version(created)}]


def _version(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version": results[0]["version"]}


def test_a_resent_rejected_op_stays_rejected_with_its_first_error():
    store = new_store(device("phone-a"))
    bad = op(1, "void", "visit", str(uuid.uuid4()), {"reason": "录错了户"}, hlc_at(0))
    first = push(store, "phone-a", [bad], at(0))[0]
    assert first["status"] == "rejected" and first["error"]["code"] == "not_found"
    again = push(store, "phone-a", [bad], at(60))[0]
    assert again == first
    assert len(store.all_ops()) == 1  # logged once


def test_a_resent_applied_op_is_a_duplicate_with_its_version():
    store = new_store(device("phone-a"))
    visit = op(1, "create", "visit", str(uuid.uuid4()), visit_data(), hlc_at(0))
    first = push(store, "phone-a", [visit], at(0))[0]
    again = push(store, "phone-a", [visit], at(60))[0]
    assert again == {"op_id": visit["op_id"], "status": "duplicate", "version": first["version"]}


# The op envelope (sync/ops.py).


def problems(**fields: Any) -> dict[str, list[str]] | None:
    raw = op(1, "update", "household", HOUSEHOLD, {"phone": "13900000001"}, ZERO) | fields
    return parse_ops([raw], "phone-a")[0].problems


def test_a_create_needs_a_uuid_id():
    data = visit_data()
    assert problems(action="create", type="visit", id="visit-1", data=data) == {
        "id": ["must be a UUID"]
    }
    assert problems(action="create", type="visit", id=str(uuid.uuid4()), data=data) is None


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
