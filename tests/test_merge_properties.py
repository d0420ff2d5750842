"""Property tests of the merge: every delivery order converges to the same records and conflicts.

Devices edit offline, push in batches of random size, retry, resend duplicates and send later
batches before earlier ones (gaps). Whatever the schedule, the store must end with the same
records and the same live conflicts, every op acknowledged exactly once, no visit lost or
stored twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import engine
from sync.effective import EPOCH
from sync.ops import parse_ops
from sync.scope import Scope
from sync.store import DeviceState, MemoryStore, Record

EVERYTHING = Scope(True, frozenset(), frozenset(), frozenset(), "all")
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SERVER_HLC = "999999999999999-0000"
HOUSEHOLD, PERSON, PROBLEM = "h-1", "p-1", "q-1"

FIELD_VALUES = {
    ("household", "phone"): ["13900000001", "13900000002", "13900000003"],
    ("household", "address"): ["一组", "二组", None],
    ("person", "flags"): [[], ["elderly"], ["sick"], ["elderly", "alone"]],
    ("person", "notes"): ["高血压", "行动不便", None],
    ("problem", "status"): ["open", "in_progress", "resolved", "verified"],
    ("problem", "resolution"): ["已修缮", "已送医", None],
}
TARGETS = {"household": HOUSEHOLD, "person": PERSON, "problem": PROBLEM}


def seeded_store(devices: int) -> tuple[MemoryStore, int]:
    store = MemoryStore()
    with store.write() as txn:
        records = [
            Record(
                "household",
                HOUSEHOLD,
                txn.allocate_version(),
                False,
                {
                    "village_id": "v",
                    "head_name": "汪德明",
                    "phone": "13900000000",
                    "address": "三组",
                    "status": "active",
                },
                "v",
                HOUSEHOLD,
            ),
            Record(
                "person",
                PERSON,
                txn.allocate_version(),
                False,
                {"household_id": HOUSEHOLD, "name": "汪德明", "flags": ["elderly"], "notes": None},
                "v",
                HOUSEHOLD,
            ),
            Record(
                "problem",
                PROBLEM,
                txn.allocate_version(),
                False,
                {
                    "household_id": HOUSEHOLD,
                    "category": "housing",
                    "description": "漏雨",
                    "status": "open",
                    "resolution": None,
                },
                "v",
                HOUSEHOLD,
            ),
        ]
        txn.insert_records(records)
        for number in range(devices):
            txn.save_device(DeviceState(f"d{number}", f"u{number}", False))
    return store, store.head_version()


@dataclass
class Phone:
    name: str
    ops: list[dict[str, Any]] = field(default_factory=list)

    def add(self, op: dict[str, Any]) -> None:
        op["device_seq"] = len(self.ops) + 1
        self.ops.append(op)


def plan_edits(data: st.DataObject, phones: list[Phone], bases: dict[str, int | None]) -> None:
    """Each phone records a few random edits and visits, with random (honest) clocks."""
    for phone in phones:
        for _ in range(data.draw(st.integers(1, 5), label=f"{phone.name} edits")):
            kind, name = data.draw(st.sampled_from(sorted(FIELD_VALUES)), label="field")
            ms = data.draw(st.integers(0, 2_100_000_000_000), label="clock")
            op = {
                "op_id": str(uuid.uuid4()),
                "hlc": f"{ms:015d}-0000",
                "type": kind,
                "id": TARGETS[kind],
                "base_version": bases[kind],
            }
            if data.draw(st.integers(0, 3), label="visit?") == 0:
                op.update(
                    type="visit",
                    action="create",
                    id=str(uuid.uuid4()),
                    base_version=None,
                    data={
                        "household_id": HOUSEHOLD,
                        "mode": "home",
                        # recorded as it happened, on the phone's own (random) clock
                        "visited_at": (EPOCH + timedelta(milliseconds=ms)).isoformat(),
                    },
                )
            else:
                value = data.draw(st.sampled_from(FIELD_VALUES[(kind, name)]), label="value")
                op.update(action="update", data={name: value})
            phone.add(op)


def deliver(data: st.DataObject, store: MemoryStore, phones: list[Phone], label: str) -> None:
    """Push every phone's ops in a random schedule: random batches, duplicates and gaps."""
    acked = {phone.name: 0 for phone in phones}  # how many of the phone's ops the server acked
    offset = {p.name: p.ops[0]["device_seq"] - 1 if p.ops else 0 for p in phones}
    for _ in range(400):
        waiting = [p for p in phones if acked[p.name] < len(p.ops)]
        if not waiting:
            return
        phone = data.draw(st.sampled_from(waiting), label=f"{label} who")
        start = acked[phone.name]
        start -= data.draw(st.integers(0, min(start, 2)), label="resend")  # duplicates
        start += data.draw(st.integers(0, 1), label="skip")  # a gap, sometimes
        size = data.draw(st.integers(1, 4), label="batch")
        batch = phone.ops[start : start + size]
        if not batch:
            continue
        ctx = engine.PushContext(
            phone.name, "u" + phone.name[1:], EVERYTHING, NOW, SERVER_HLC, "supervisor"
        )
        result = engine.push(store, ctx, parse_ops(batch, phone.name))
        assert all(r["status"] != "gap" or start > acked[phone.name] for r in result.results)
        acked[phone.name] = result.next_seq - 1 - offset[phone.name]
    raise AssertionError("delivery did not finish")


def final_state(store: MemoryStore) -> dict[tuple[str, str], Any]:
    state = {}
    for record in store.all_records():
        if not record.deleted:
            state[(record.type, record.id)] = record.data
    return state


def run(data: st.DataObject, plans: list[Phone], later: list[Phone], devices: int) -> Any:
    store, _ = seeded_store(devices)
    deliver(data, store, plans, "phase 1")
    for phone in later:  # phones that synced now edit knowing everything so far
        for op in phone.ops:
            if op["action"] == "update":
                op["base_version"] = store.record(op["type"], op["id"]).version  # type: ignore[union-attr]
    deliver(data, store, later, "phase 2")
    return store


def clone(phones: list[Phone]) -> list[Phone]:
    return [Phone(p.name, [dict(op) for op in p.ops]) for p in phones]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(2, 5))
def test_any_delivery_order_converges_to_the_same_records_and_conflicts(data, devices):
    _, seed_version = seeded_store(devices)
    bases = {"household": 1, "person": 2, "problem": 3}
    phones = [Phone(f"d{n}") for n in range(devices)]
    plan_edits(data, phones, bases)  # type: ignore[arg-type]
    second = [Phone(f"d{n}") for n in range(devices)]
    plan_edits(data, second, {k: None for k in bases})
    for phone, more in zip(phones, second, strict=True):
        for op in more.ops:
            phone.add(op)
    split = {p.name: data.draw(st.integers(0, len(p.ops)), label="synced after") for p in phones}
    first = [Phone(p.name, p.ops[: split[p.name]]) for p in phones]
    rest = [Phone(p.name, p.ops[split[p.name] :]) for p in phones]
    one = run(data, clone(first), clone(rest), devices)
    two = run(data, clone(first), clone(rest), devices)
    assert final_state(one) == final_state(two)
    every_op = [op for p in phones for op in p.ops]
    for store in (one, two):
        logged = [op.op_id for op in store.all_ops()]
        assert sorted(logged) == sorted(op["op_id"] for op in every_op)  # each acked exactly once
        visits = [r for r in store.all_records() if r.type == "visit"]
        expected = [op["id"] for op in every_op if op["type"] == "visit"]
        assert sorted(v.id for v in visits) == sorted(expected)
