"""The Store contract (sync/store.py), one suite for every backend: memory, SQLite, PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from server.storage.store import DEVICES, SqlStore
from sync.merge import FieldWrite
from sync.scope import Assignment, Scope, expand
from sync.store import DeviceState, MemoryStore, Record, StoredOp
from tests.conftest import sql_engine

EVERYTHING = Scope(True, frozenset(), frozenset(), frozenset(), "all")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    engine = sql_engine(request.getfixturevalue(f"{request.param}_url"))
    yield SqlStore(engine)
    engine.dispose()


def add_device(store, device_id: str) -> None:
    if isinstance(store, SqlStore):
        with store.engine.begin() as conn:
            conn.execute(
                insert(DEVICES).values(
                    id=device_id,
                    user_id="u",
                    label="",
                    token_hash=device_id,
                    created_at=datetime.now(),
                    next_seq=1,
                    floor_hlc="000000000000000-0000",
                    last_hlc="000000000000000-0000",
                )
            )
    else:
        with store.write() as txn:
            txn.save_device(DeviceState(device_id, "u", False))


def household(id_: str, version: int, village: str = "v1", **data) -> Record:
    body = {"village_id": village, "head_name": "汪德明", "status": "active", **data}
    return Record("household", id_, version, False, body, village, id_)


def region(id_: str, version: int, parent: str | None, level: str) -> Record:
    return Record(
        "region",
        id_,
        version,
        False,
        {"parent_id": parent, "level": level, "name": id_, "code": None},
        id_ if level == "village" else None,
    )


def test_versions_increase_across_transactions(store):
    with store.write() as txn:
        first = [txn.allocate_version() for _ in range(3)]
    with store.write() as txn:
        second = txn.allocate_version()
    assert first == [1, 2, 3] and second == 4
    assert store.head_version() == 4


def test_a_failed_transaction_leaves_nothing_behind(store):
    with pytest.raises(RuntimeError), store.write() as txn:
        txn.insert_records([household("h1", txn.allocate_version())])
        raise RuntimeError("crash in the middle")
    assert store.head_version() == 0
    assert store.changes(0, EVERYTHING, 10) == []


def test_records_round_trip_with_chinese_and_nested_data(store):
    with store.write() as txn:
        txn.insert_records(
            [
                household(
                    "h1",
                    txn.allocate_version(),
                    notes="孙子留守，祖孙二人",
                    extra={"list": [1, 2.5, None, True]},
                )
            ]
        )
    with store.write() as txn:
        found = txn.records("household", ["h1", "missing"])
    assert list(found) == ["h1"]
    assert found["h1"].data["notes"] == "孙子留守，祖孙二人"
    assert found["h1"].data["extra"] == {"list": [1, 2.5, None, True]}


def test_an_update_replaces_data_and_version(store):
    with store.write() as txn:
        txn.insert_records([household("h1", txn.allocate_version())])
    with store.write() as txn:
        record = txn.records("household", ["h1"])["h1"]
        record.data["phone"] = "13900000000"
        record.version = txn.allocate_version()
        txn.update_records([record])
    assert [(r.version, r.data.get("phone")) for r in store.changes(0, EVERYTHING, 10)] == [
        (2, "13900000000")
    ]


def test_changes_come_in_version_order_after_the_cursor_and_limited(store):
    with store.write() as txn:
        txn.insert_records([household(f"h{n}", txn.allocate_version()) for n in range(10)])
    page = store.changes(3, EVERYTHING, 4)
    assert [r.version for r in page] == [4, 5, 6, 7]


def test_changes_are_limited_to_the_scope(store):
    with store.write() as txn:
        txn.insert_records(
            [
                region("c", txn.allocate_version(), None, "county"),
                region("v1", txn.allocate_version(), "c", "village"),
                region("v2", txn.allocate_version(), "c", "village"),
                household("h1", txn.allocate_version(), "v1"),
                household("h2", txn.allocate_version(), "v2"),
                household("h3", txn.allocate_version(), "v2"),
                Record(
                    "form",
                    "f1",
                    txn.allocate_version(),
                    False,
                    {"form_id": "weekly_visit", "version": 1},
                ),
            ]
        )
    scope = Scope(False, frozenset({"c", "v1"}), frozenset({"v1"}), frozenset({"h3"}), "x")
    ids = [r.id for r in store.changes(0, scope, 100)]
    assert ids == ["c", "v1", "h1", "h3", "f1"]
    only_v2 = Scope(False, frozenset({"v2"}), frozenset({"v2"}), frozenset(), "y")
    assert [r.id for r in store.changes(0, only_v2, 100, exclude=scope)] == ["v2", "h2"]


def test_field_writes_are_kept_per_record_in_order(store):
    writes = [
        FieldWrite("household", "h1", "phone", f"op{n}", n, 0, "d1", n, "x", f"v{n}", "u")
        for n in range(1, 4)
    ]
    other = FieldWrite("household", "h2", "phone", "op9", 9, 0, "d1", 9, "x", ["a", "b"], None)
    with store.write() as txn:
        txn.add_field_writes([*writes, other])
    with store.write() as txn:
        found = txn.field_writes("household", ["h1", "h2", "h3"])
    assert found["h1"] == writes and found["h2"] == [other] and found["h3"] == []


def _op(op_id: str, seq: int, fingerprint: str = "f") -> StoredOp:
    return StoredOp(
        op_id,
        "d1",
        seq,
        "u",
        fingerprint,
        "visit",
        "create",
        "r",
        "h",
        "h",
        None,
        '{"a":"走访"}',
        "applied",
        seq,
        None,
        datetime.now(UTC).isoformat(),
    )


def test_the_ops_log_finds_ops_by_id_and_keeps_the_first_of_a_repeated_id(store):
    add_device(store, "d1")
    with store.write() as txn:
        txn.add_ops([_op("a", 1), _op("b", 2)])
    with store.write() as txn:
        txn.add_ops([_op("a", 3, fingerprint="other")])
    with store.write() as txn:
        found = txn.ops(["a", "b", "c"])
    assert sorted(found) == ["a", "b"]
    assert found["a"].fingerprint == "f" and found["a"].payload == '{"a":"走访"}'


def test_a_device_keeps_its_seq_and_clock(store):
    add_device(store, "d1")
    with store.write() as txn:
        device = txn.device("d1")
        device.next_seq, device.last_hlc = 42, "001763971200000-0001"
        txn.save_device(device)
    with store.write() as txn:
        again = txn.device("d1")
        assert txn.device("nope") is None
    assert (again.next_seq, again.last_hlc, again.revoked) == (42, "001763971200000-0001", False)


def test_assignments_are_remembered_by_fingerprint(store):
    assignment = Assignment.of(["v2", "v1"], ["h9"])
    store.remember_assignment(assignment)
    store.remember_assignment(assignment)
    assert store.assignment(assignment.fingerprint) == assignment
    assert store.assignment("unknown") is None


def test_the_region_tree_and_household_villages_are_read_back(store):
    with store.write() as txn:
        txn.insert_records(
            [
                region("c", txn.allocate_version(), None, "county"),
                region("v1", txn.allocate_version(), "c", "village"),
                household("h1", txn.allocate_version(), "v1"),
            ]
        )
    assert store.region_tree() == {"c": (None, "county"), "v1": ("c", "village")}
    assert store.household_villages(["h1", "h2"]) == {"h1": "v1"}


def test_the_region_tree_follows_every_change_another_worker_commits(store, request):
    """A SqlStore keeps the tree between calls (a province's is tens of thousands of rows): a
    region added, moved or deleted through another store on the same database — another
    worker — shows on the next call all the same."""
    other = store
    if isinstance(store, SqlStore):
        other = SqlStore(store.engine.execution_options())
        request.addfinalizer(other.engine.dispose)
    with other.write() as txn:
        txn.insert_records(
            [
                region("c", txn.allocate_version(), None, "county"),
                region("t1", txn.allocate_version(), "c", "township"),
                region("t2", txn.allocate_version(), "c", "township"),
                region("v1", txn.allocate_version(), "t1", "village"),
            ]
        )
    first = store.region_tree()
    assert first["v1"] == ("t1", "village")
    assert store.region_tree() == first  # nothing changed: the same tree
    with other.write() as txn:  # 东岭 moves to the other township
        txn.update_records([region("v1", txn.allocate_version(), "t2", "village")])
    assert store.region_tree()["v1"] == ("t2", "village")
    with other.write() as txn:
        txn.insert_records([region("v2", txn.allocate_version(), "t2", "village")])
    assert store.region_tree()["v2"] == ("t2", "village")
    with other.write() as txn:
        gone = region("t1", txn.allocate_version(), "c", "township")
        txn.update_records([Record(**{**vars(gone), "deleted": True})])
    assert set(store.region_tree()) == {"c", "t2", "v1", "v2"}


def user(id_: str, version: int, *reach: tuple[str | None, str | None], name: str = "") -> Record:
    body = {"username": id_, "name": name or id_, "role": "cadre", "active": True}
    return Record("user", id_, version, False, body, reach=tuple(reach))


def _county_with_users(store) -> None:
    """c ⊃ t1 ⊃ v1, v2 and c ⊃ t2 ⊃ v3; a cadre per village, a supervisor of t1, a 包保
    cadre of household h2 alone, and the county's admin."""
    with store.write() as txn:
        v = txn.allocate_version
        txn.insert_records(
            [
                region("c", v(), None, "county"),
                region("t1", v(), "c", "township"),
                region("t2", v(), "c", "township"),
                region("v1", v(), "t1", "village"),
                region("v2", v(), "t1", "village"),
                region("v3", v(), "t2", "village"),
                household("h1", v(), "v1"),
                household("h2", v(), "v2"),
                user("cadre_v1", v(), ("v1", None)),
                user("cadre_v2", v(), ("v2", None)),
                user("cadre_v3", v(), ("v3", None)),
                user("supervisor_t1", v(), ("t1", None)),
                user("baobao_h2", v(), ("v2", "h2")),
                user("admin", v(), ("c", None)),
            ]
        )


def _users_seen(store, regions=(), households=()) -> set[str]:
    assignment = Assignment.of(regions, households)
    scope = expand(assignment, store.region_tree(), store.household_villages(households))
    return {r.id for r in store.changes(0, scope, 100) if r.type == "user"}


def test_a_cadre_receives_the_users_of_their_village_and_above_not_other_villages(store):
    _county_with_users(store)
    assert _users_seen(store, ["v1"]) == {"cadre_v1", "supervisor_t1", "admin"}


def test_a_supervisor_receives_every_user_working_below_them(store):
    _county_with_users(store)
    assert _users_seen(store, ["t1"]) == {
        "cadre_v1",
        "cadre_v2",
        "supervisor_t1",
        "baobao_h2",
        "admin",
    }


def test_a_household_assigned_user_meets_only_who_covers_that_household(store):
    _county_with_users(store)
    assert _users_seen(store, households=["h2"]) == {
        "cadre_v2",
        "supervisor_t1",
        "baobao_h2",
        "admin",
    }
    assert "baobao_h2" not in _users_seen(store, households=["h1"])


def test_a_user_record_keeps_its_reach_and_an_update_replaces_it(store):
    with store.write() as txn:
        txn.insert_records([user("u1", txn.allocate_version(), ("v1", None), ("v2", "h2"))])
    with store.write() as txn:
        stored = txn.records("user", ["u1"])["u1"]
        assert stored.reach == (("v1", None), ("v2", "h2"))
        moved = user("u1", txn.allocate_version(), ("v3", None), name="李鑫")
        txn.update_records([moved])
    with store.write() as txn:
        again = txn.records("user", ["u1"])["u1"]
    assert (again.reach, again.data["name"], again.version) == ((("v3", None),), "李鑫", 2)
    only_v3 = Scope(False, frozenset({"v3"}), frozenset({"v3"}), frozenset(), "v3")
    only_v1 = Scope(False, frozenset({"v1"}), frozenset({"v1"}), frozenset(), "v1")
    assert [r.id for r in store.changes(0, only_v3, 10)] == ["u1"]
    assert store.changes(0, only_v1, 10) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=JSON)
def test_any_json_value_survives_a_round_trip(store, payload):
    with store.write() as txn:
        version = txn.allocate_version()
        txn.insert_records([household(f"h{version}", version, notes=payload)])
    with store.write() as txn:
        assert txn.records("household", [f"h{version}"])[f"h{version}"].data["notes"] == payload
