"""The storage contract the sync engine runs on, and an in-memory implementation of it.

Kinto's lesson: one contract, one test suite (tests/test_store_contract.py) run against every
backend — this in-memory store, SQLite and PostgreSQL (server/store.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from sync.merge import FieldWrite
from sync.scope import Assignment, RegionTree, Scope


@dataclass
class Record:
    """A synced record (CONTRACT §4) with the two keys that decide who may see it."""

    type: str
    id: str
    version: int
    deleted: bool
    data: dict[str, Any]
    village_id: str | None = None
    household_id: str | None = None
    #: a ``user`` record's reach: where the user works, as (region_id, None) for each region
    #: assigned to them and (village_id, household_id) for each household (see ``visible``)
    reach: tuple[tuple[str | None, str | None], ...] = ()

    def envelope(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "version": self.version,
            "deleted": self.deleted,
            "data": {} if self.deleted else self.data,
        }


@dataclass
class DeviceState:
    id: str
    user_id: str
    revoked: bool
    next_seq: int = 1
    floor_hlc: str = "000000000000000-0000"  # the server_hlc given at registration
    last_hlc: str = "000000000000000-0000"  # effective hlc of the device's latest op


class StoredOp(NamedTuple):
    """An acknowledged op as the ops log keeps it: what came in, from whom, and what it did.
    A named tuple, like sync.ops.Op."""

    op_id: str
    device_id: str
    device_seq: int
    user_id: str
    fingerprint: str
    type: str
    action: str
    record_id: str
    hlc: str
    effective_hlc: str
    base_version: int | None
    payload: str  # the op as received (canonical JSON)
    status: str  # applied | conflict | duplicate | rejected
    version: int | None
    error: dict[str, Any] | None
    received_at: str


class WriteTxn(Protocol):
    """One atomic, serialized write transaction: versions are handed out in commit order."""

    def device(self, device_id: str) -> DeviceState | None: ...
    def save_device(self, device: DeviceState) -> None: ...
    def ops(self, op_ids: Iterable[str]) -> dict[str, StoredOp]: ...
    def add_ops(self, ops: list[StoredOp]) -> None: ...
    def records(self, type_: str, ids: Iterable[str]) -> dict[str, Record]: ...
    def insert_records(self, records: list[Record]) -> None: ...
    def update_records(self, records: list[Record]) -> None: ...
    def field_writes(self, type_: str, ids: Iterable[str]) -> dict[str, list[FieldWrite]]: ...
    def add_field_writes(self, writes: list[FieldWrite]) -> None: ...
    def allocate_version(self) -> int: ...


class Store(Protocol):
    def write(self) -> Any:
        """A context manager yielding a WriteTxn; commits on success, rolls back on error."""
        ...

    def head_version(self) -> int: ...

    def changes(
        self, after: int, scope: Scope, limit: int, exclude: Scope | None = None
    ) -> list[Record]:
        """Records with version > after, in ``scope`` but not in ``exclude``, by version."""
        ...

    def region_tree(self) -> RegionTree: ...
    def household_villages(self, household_ids: Iterable[str]) -> dict[str, str]: ...
    def remember_assignment(self, assignment: Assignment) -> None: ...
    def assignment(self, fingerprint: str) -> Assignment | None: ...


def visible(record: Record, scope: Scope) -> bool:
    """Whether a device with ``scope`` receives ``record``; the rule every store implements."""
    if record.type == "form" or scope.everything:
        return True
    if record.type == "region":
        return record.id in scope.region_ids
    if record.type == "user":
        return any(meets(scope, place, household) for place, household in record.reach)
    return scope.holds(record.village_id, record.household_id)


def meets(scope: Scope, region_id: str | None, household_id: str | None) -> bool:
    """Whether one place of a user's reach overlaps ``scope``: an assigned region does when
    the device receives that region's record (it lies above, at or below the device's own
    regions, so the two share villages); an assigned household when the scope holds it."""
    if household_id is None:
        return region_id in scope.region_ids
    return scope.holds(region_id, household_id)


@dataclass
class _State:
    version: int = 0
    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    ops: dict[str, StoredOp] = field(default_factory=dict)  # the first op of each op_id
    op_log: list[StoredOp] = field(default_factory=list)
    writes: dict[tuple[str, str], list[FieldWrite]] = field(default_factory=dict)


class MemoryStore:
    """The reference Store: plain dicts behind one lock; a transaction works on a copy."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.RLock()
        self._assignments: dict[str, Assignment] = {}

    @contextmanager
    def write(self) -> Iterator[MemoryTxn]:
        with self._lock:
            txn = MemoryTxn(copy.deepcopy(self._state))
            yield txn
            self._state = txn.state

    def head_version(self) -> int:
        return self._state.version

    def changes(
        self, after: int, scope: Scope, limit: int, exclude: Scope | None = None
    ) -> list[Record]:
        state = self._state
        found = [
            r
            for r in state.records.values()
            if r.version > after and visible(r, scope) and not (exclude and visible(r, exclude))
        ]
        found.sort(key=lambda r: r.version)
        return [replace(r, data=copy.deepcopy(r.data)) for r in found[:limit]]

    def region_tree(self) -> RegionTree:
        return {
            r.id: (r.data.get("parent_id"), r.data["level"])
            for r in self._state.records.values()
            if r.type == "region" and not r.deleted
        }

    def household_villages(self, household_ids: Iterable[str]) -> dict[str, str]:
        out = {}
        for household_id in household_ids:
            record = self._state.records.get(("household", household_id))
            if record is not None:
                out[household_id] = record.data["village_id"]
        return out

    def remember_assignment(self, assignment: Assignment) -> None:
        self._assignments[assignment.fingerprint] = assignment

    def assignment(self, fingerprint: str) -> Assignment | None:
        return self._assignments.get(fingerprint)

    def record(self, type_: str, id_: str) -> Record | None:
        found = self._state.records.get((type_, id_))
        return copy.deepcopy(found)

    def all_records(self) -> list[Record]:
        return sorted(copy.deepcopy(list(self._state.records.values())), key=lambda r: r.version)

    def all_ops(self) -> list[StoredOp]:
        return list(self._state.op_log)


class MemoryTxn:
    def __init__(self, state: _State) -> None:
        self.state = state

    def device(self, device_id: str) -> DeviceState | None:
        found = self.state.devices.get(device_id)
        return replace(found) if found else None

    def save_device(self, device: DeviceState) -> None:
        self.state.devices[device.id] = replace(device)

    def ops(self, op_ids: Iterable[str]) -> dict[str, StoredOp]:
        return {i: self.state.ops[i] for i in op_ids if i in self.state.ops}

    def add_ops(self, ops: list[StoredOp]) -> None:
        for op in ops:
            self.state.op_log.append(op)
            self.state.ops.setdefault(op.op_id, op)

    def records(self, type_: str, ids: Iterable[str]) -> dict[str, Record]:
        out = {}
        for id_ in ids:
            found = self.state.records.get((type_, id_))
            if found is not None:
                out[id_] = replace(found, data=copy.deepcopy(found.data))
        return out

    def insert_records(self, records: list[Record]) -> None:
        for record in records:
            key = (record.type, record.id)
            if key in self.state.records:
                raise KeyError(f"{record.type} {record.id} exists")
            self.state.records[key] = replace(record, data=copy.deepcopy(record.data))

    def update_records(self, records: list[Record]) -> None:
        for record in records:
            self.state.records[(record.type, record.id)] = replace(
                record, data=copy.deepcopy(record.data)
            )

    def field_writes(self, type_: str, ids: Iterable[str]) -> dict[str, list[FieldWrite]]:
        return {i: list(self.state.writes.get((type_, i), [])) for i in ids}

    def add_field_writes(self, writes: list[FieldWrite]) -> None:
        for write in writes:
            self.state.writes.setdefault((write.record_type, write.record_id), []).append(write)

    def allocate_version(self) -> int:
        self.state.version += 1
        return self.state.version
