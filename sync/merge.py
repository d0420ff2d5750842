"""Per-field merge rules (CONTRACT §6), written so that arrival order cannot change the outcome.

Every update of a field is kept as a ``FieldWrite``. A write *saw* another when the other's
version is covered by its ``base_version`` or was an earlier op of the same device. The
field's value is decided by its *heads* — the writes no other write saw — and only by them:

1. heads = the latest write of each device, minus those some write's base_version covers;
2. one head: its value. Several heads (concurrent writes): the field's rule picks
   (``latest``: greatest (hlc, device_id); ``least_closed``: the least-closed problem status;
   ``union``: the union of the flag lists);
3. heads that disagree with the value are an *open* conflict; when a write sees several
   concurrent writes and replaces them, their conflict is kept as *resolved*.

Because heads depend only on which write saw which, and never on when a write arrived,
every server and phone that holds the same writes computes the same values and conflicts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sync.records import PROBLEM_STATUSES

CONFLICT_NAMESPACE = uuid.UUID("6f1c2a8e-93a5-4d0b-9a55-2d0f6c9b7e11")


@dataclass(frozen=True)
class FieldWrite:
    record_type: str
    record_id: str
    field: str
    op_id: str
    version: int
    base_version: int
    device_id: str
    device_seq: int
    hlc: str
    value: Any
    user_id: str | None = None

    def saw(self, other: FieldWrite) -> bool:
        """Whether this write was made knowing ``other``."""
        if other.version <= self.base_version:
            return True
        return other.device_id == self.device_id and other.device_seq < self.device_seq


def heads(writes: list[FieldWrite]) -> list[FieldWrite]:
    """The writes no other write saw, in a stable order."""
    latest: dict[str, FieldWrite] = {}
    for write in writes:
        known = latest.get(write.device_id)
        if known is None or write.device_seq > known.device_seq:
            latest[write.device_id] = write
    covered = max((w.base_version for w in writes), default=0)
    return sorted((w for w in latest.values() if w.version > covered), key=_rank)


def _rank(write: FieldWrite) -> tuple[str, str]:
    return (write.hlc, write.device_id)


def _stage(value: Any) -> int:
    return PROBLEM_STATUSES.index(value) if value in PROBLEM_STATUSES else -1


def resolve(rule: str, candidates: list[FieldWrite]) -> tuple[Any, FieldWrite]:
    """The value of a field whose heads are ``candidates``, and the write credited with it."""
    newest = max(candidates, key=_rank)
    if rule == "least_closed":
        return _least_closed(candidates)
    if rule == "union":
        flags: set[str] = set()
        for write in candidates:
            flags.update(write.value or [])
        return sorted(flags), newest
    return newest.value, newest


def _least_closed(candidates: list[FieldWrite]) -> tuple[Any, FieldWrite]:
    """The least-closed status wins: a concurrent edit never silently closes an open problem."""
    stage = min(_stage(w.value) for w in candidates)
    winner = max((w for w in candidates if _stage(w.value) == stage), key=_rank)
    return winner.value, winner


@dataclass(frozen=True)
class ConflictRecord:
    """A conflict record (CONTRACT §4 ``conflict``); its id depends only on the writes involved."""

    id: str
    record_type: str
    record_id: str
    field: str
    kept: dict[str, Any]
    lost: list[dict[str, Any]]
    rule: str
    status: str

    def data(self) -> dict[str, Any]:
        return {
            "record_type": self.record_type,
            "record_id": self.record_id,
            "field": self.field,
            "kept": self.kept,
            "lost": self.lost,
            "rule": self.rule,
            "status": self.status,
        }


def _side(value: Any, write: FieldWrite) -> dict[str, Any]:
    return {
        "value": value,
        "by": write.device_id,
        "user_id": write.user_id,
        "hlc": write.hlc,
        "op_id": write.op_id,
    }


def conflict_for(rule: str, concurrent: list[FieldWrite], status: str) -> ConflictRecord | None:
    """The conflict among concurrent writes, or None when they all agree with the result."""
    if len(concurrent) < 2:
        return None
    value, credited = resolve(rule, concurrent)
    losers = [w for w in concurrent if w.value != value]
    if not losers:
        return None
    first = concurrent[0]
    key = "|".join(
        [first.record_type, first.record_id, first.field, *sorted(w.op_id for w in concurrent)]
    )
    return ConflictRecord(
        id=str(uuid.uuid5(CONFLICT_NAMESPACE, key)),
        record_type=first.record_type,
        record_id=first.record_id,
        field=first.field,
        kept=_side(value, credited),
        lost=[_side(w.value, w) for w in sorted(losers, key=_rank)],
        rule=rule,
        status=status,
    )


@dataclass(frozen=True)
class FieldOutcome:
    """What one new write does to its field: the new value and the conflict records to store."""

    value: Any
    upsert: list[ConflictRecord]
    retire: list[str]  # ids of open conflicts that no longer describe the heads


def merge_write(rule: str, earlier: list[FieldWrite], new: FieldWrite) -> FieldOutcome:
    """Add ``new`` to the field's ``earlier`` writes (the steps of the module docstring)."""
    before = heads(earlier)
    after = heads([*earlier, new])
    value, _ = resolve(rule, after)
    upsert: list[ConflictRecord] = []
    replaced = heads([w for w in earlier if new.saw(w)])
    resolved = conflict_for(rule, replaced, "resolved")
    if resolved is not None:
        upsert.append(resolved)
    still_open = conflict_for(rule, after, "open")
    if still_open is not None:
        upsert.append(still_open)
    retire = []
    previous = conflict_for(rule, before, "open")
    if previous is not None and previous.id not in {c.id for c in upsert}:
        retire.append(previous.id)
    return FieldOutcome(value, upsert, retire)
