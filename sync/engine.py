"""Push and pull (CONTRACT §5, §8), written as numbered steps in one place.

The engine knows nothing of HTTP or SQL: the server hands it a Store, the device's context
and the parsed request, and sends back what it returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sync.cursor import Cursor, decode_cursor, encode_cursor
from sync.effective import VisitTimeBounds, effective_hlc, effective_visit_time
from sync.errors import DeviceRevoked, SyncError
from sync.merge import ConflictRecord, FieldWrite, heads, merge_write, resolve
from sync.ops import Op
from sync.permissions import Actor, check, named_users
from sync.records import RECORD_TYPES, parse_offset_datetime, with_defaults
from sync.scope import EMPTY_SCOPE, Assignment, Scope, expand
from sync.store import DeviceState, Record, Store, StoredOp, WriteTxn

#: answers validator: (form_id, form_version, answers, visited_at, household_id, ids of the
#: people this batch creates in that household) → field → messages; the visit's time is the
#: clock of the form's today() and now()
AnswerCheck = Callable[
    [str | None, int | None, dict[str, Any], str | None, str | None, frozenset[str]],
    dict[str, list[str]],
]


@dataclass(frozen=True)
class PushContext:
    device_id: str
    user_id: str
    scope: Scope  # where this user may write
    received_at: datetime  # the server's clock, timezone-aware
    server_hlc: str  # the server's hlc at receipt
    role: str  # what this user may do there (sync.permissions)
    device_time: datetime | None = None
    check_answers: AnswerCheck | None = None
    #: user id → that user's scope, or None if no such active user (assignees, sync.permissions)
    scope_of_user: Callable[[str], Scope | None] | None = None
    #: how long before the phone recorded it a visit may have happened (CONTRACT §10)
    backdate: timedelta = timedelta(days=7)


@dataclass
class PushResult:
    results: list[dict[str, Any]]
    next_seq: int
    stored: list[StoredOp] = field(default_factory=list)


class Rejected(Exception):
    """An op that can never be applied; it is acknowledged and kept for review."""

    def __init__(self, error: SyncError) -> None:
        super().__init__(error.message)
        self.error = error


def _reject(code: str, message: str, fields: dict[str, list[str]] | None = None) -> Rejected:
    error = SyncError(message, {"fields": fields} if fields else None)
    error.code = code
    return Rejected(error)


def push(store: Store, ctx: PushContext, ops: list[Op], renumber: bool = False) -> PushResult:
    """Apply a device's ops in ``device_seq`` order, atomically.

    1. Lock the store for writing (versions are handed out in commit order).
    2. Refuse a revoked device.
    3. Per op, in device_seq order:
       a. an op_id seen before: the same payload is a ``duplicate`` with the result of then;
          another payload is ``rejected`` (conflict);
       b. a device_seq already used by another op: ``rejected`` (conflict);
       c. a device_seq beyond the next expected one: ``gap``, and so are the ops after it;
       d. the next expected device_seq: applied, ``conflict`` if a field conflict was recorded,
          or ``rejected`` if it can never be applied — all three consume the seq.
    4. Save the device's next_seq and clock, the ops log and the records; commit.

    ``renumber`` is for the server's own device: its ops take the next seqs inside the lock,
    so concurrent server-side edits never race for a seq.
    """
    answers = _answer_problems(ctx, ops)  # outside the write lock: the longest check of an op
    actor = _actor(ctx, ops)
    with store.write() as txn:
        device = txn.device(ctx.device_id)
        if device is None or device.revoked:
            raise DeviceRevoked("this device has been revoked")
        if renumber:
            ops = [op._replace(device_seq=device.next_seq + i) for i, op in enumerate(ops)]
        batch = _Batch(txn, ctx, actor, device, answers)
        batch.prefetch(ops)
        known = txn.ops(op.op_id for op in ops)
        results: list[dict[str, Any]] = []
        gap = False
        for op in ops:
            earlier = known.get(op.op_id) or batch.logged.get(op.op_id)
            if earlier is not None:
                results.append(_repeat(batch, op, earlier))
            elif op.device_seq < device.next_seq:
                results.append(_result(op, "rejected", None, _conflict("device_seq already used")))
            elif gap or op.device_seq > device.next_seq:
                gap = True
                results.append({"op_id": op.op_id, "status": "gap"})
            else:
                results.append(batch.apply(op))
                device.next_seq += 1
        batch.flush()
        txn.save_device(device)
    return PushResult(results, device.next_seq, list(batch.logged.values()))


def _answer_problems(ctx: PushContext, ops: list[Op]) -> dict[tuple[str, str], dict[str, Any]]:
    """(op_id, fingerprint) → what is wrong with the answers of each visit the batch creates,
    against the form version they were filled with. It depends on the op alone, so it runs
    before the write lock is taken: every other device's push waits for that lock."""
    if ctx.check_answers is None:
        return {}
    created: dict[object, set[str]] = {}  # a person recorded in the same batch as the visit
    for op in ops:
        if op.type == "person" and op.action == "create":
            created.setdefault(op.data.get("household_id"), set()).add(op.id)
    return {
        (op.op_id, op.fingerprint): ctx.check_answers(
            op.data.get("form_id"),
            op.data.get("form_version"),
            op.data.get("answers") or {},
            op.data.get("visited_at"),
            household if isinstance(household := op.data.get("household_id"), str) else None,
            frozenset(created.get(op.data.get("household_id"), ())),
        )
        for op in ops
        if op.type == "visit" and op.action == "create" and not op.problems
    }


def _actor(ctx: PushContext, ops: list[Op]) -> Actor:
    """Who writes, with the scope of every user the ops name as assignee or responsible, looked
    up before the write lock is taken."""
    named: set[str] = set()
    for op in ops:
        named |= named_users(op.type, op.data)
    lookup = ctx.scope_of_user
    return Actor(ctx.user_id, ctx.role, {u: lookup(u) if lookup else None for u in named})


def _conflict(message: str) -> dict[str, Any]:
    return {"code": "conflict", "message": message}


def _result(
    op: Op, status: str, version: int | None, error: dict[str, Any] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"op_id": op.op_id, "status": status}
    if version is not None:
        out["version"] = version
    if error is not None:
        out["error"] = error
    return out


def _repeat(batch: _Batch, op: Op, earlier: StoredOp) -> dict[str, Any]:
    """An op_id seen before: the result of then, or a rejection if the payload differs."""
    if earlier.fingerprint != op.fingerprint:
        error = _conflict("op_id already used with another payload")
        if op.device_seq == batch.device.next_seq:
            batch.log(op, "rejected", None, error, op.hlc)
            batch.device.next_seq += 1
        return _result(op, "rejected", None, error)
    if earlier.status == "rejected":
        return _result(op, "rejected", None, earlier.error)
    return _result(op, "duplicate", earlier.version, None)


class _Batch:
    """The records one push reads and writes, fetched up front and written back at the end."""

    def __init__(
        self,
        txn: WriteTxn,
        ctx: PushContext,
        actor: Actor,
        device: DeviceState,
        answers: dict[tuple[str, str], dict[str, Any]],
    ) -> None:
        self.txn, self.ctx, self.actor, self.device = txn, ctx, actor, device
        self.answers = answers
        self.records: dict[tuple[str, str], Record | None] = {}
        self.new: dict[tuple[str, str], Record] = {}
        self.changed: dict[tuple[str, str], Record] = {}
        self.writes: dict[tuple[str, str], list[FieldWrite]] = {}
        self.new_writes: list[FieldWrite] = []
        self.logged: dict[str, StoredOp] = {}
        #: the push's time as every op's log entry and every visit hold it, spelled once
        self.received_at = ctx.received_at.isoformat()
        self.received_at_seconds = ctx.received_at.isoformat(timespec="seconds")
        self.visit_times = VisitTimeBounds(ctx.device_time, ctx.received_at, ctx.backdate)

    def prefetch(self, ops: list[Op]) -> None:
        wanted: dict[str, set[str]] = {}
        for op in ops:
            wanted.setdefault(op.type, set()).add(op.id)
            household = op.data.get("household_id")
            if isinstance(household, str):
                wanted.setdefault("household", set()).add(household)
            corrects = op.data.get("corrects")
            if op.type == "visit" and isinstance(corrects, str):
                wanted["visit"].add(corrects)
        for type_, ids in wanted.items():
            if type_ in RECORD_TYPES:
                found = self.txn.records(type_, ids)
                for id_ in ids:
                    self.records[(type_, id_)] = found.get(id_)
        updated = {(op.type, op.id) for op in ops if op.action == "update"}
        for type_ in {t for t, _ in updated}:
            targets = [i for t, i in updated if t == type_]
            for id_, writes in self.txn.field_writes(type_, targets).items():
                self.writes[(type_, id_)] = writes

    def get(self, type_: str, id_: str) -> Record | None:
        key = (type_, id_)
        if key not in self.records:
            self.records[key] = self.txn.records(type_, [id_]).get(id_)
        return self.records[key]

    def insert(self, record: Record) -> None:
        self.records[(record.type, record.id)] = record
        self.new[(record.type, record.id)] = record

    def touch(self, record: Record) -> None:
        key = (record.type, record.id)
        if key not in self.new:
            self.changed[key] = record

    def log(
        self,
        op: Op,
        status: str,
        version: int | None,
        error: dict[str, Any] | None,
        hlc: str,
        keep_payload: bool = True,
    ) -> None:
        """Log the op. A stored visit is append-only and holds everything its op carried, so
        its log entry need not repeat the payload; every other op keeps it for the audit."""
        self.logged[op.op_id] = StoredOp(
            op_id=op.op_id,
            device_id=self.device.id,
            device_seq=op.device_seq,
            user_id=self.ctx.user_id,
            fingerprint=op.fingerprint,
            type=op.type,
            action=op.action,
            record_id=op.id,
            hlc=op.hlc,
            effective_hlc=hlc,
            base_version=op.base_version,
            payload=op.payload if keep_payload else "",
            status=status,
            version=version,
            error=error,
            received_at=self.received_at,
        )

    def apply(self, op: Op) -> dict[str, Any]:
        hlc = effective_hlc(
            op.hlc or self.device.last_hlc,
            self.device.floor_hlc,
            self.device.last_hlc,
            self.ctx.server_hlc,
        )
        try:
            if op.problems:
                raise _reject("validation_failed", "invalid op", op.problems)
            self.device.last_hlc = hlc
            status, version = getattr(self, "_" + op.action)(op, hlc)
        except Rejected as rejected:
            error = rejected.error.as_dict()
            self.log(op, "rejected", None, error, hlc)
            return _result(op, "rejected", None, error)
        self.log(op, status, version, None, hlc, keep_payload=op.type != "visit")
        return _result(op, status, version, None)

    def _household_in_scope(self, household_id: str) -> Record:
        household = self.get("household", household_id)
        if household is None or household.deleted:
            raise _reject(
                "validation_failed",
                "unknown household",
                {"data.household_id": ["no such household"]},
            )
        if not self.ctx.scope.holds(household.data.get("village_id"), household.id):
            raise _reject("forbidden", "household outside your assigned villages and households")
        return household

    def _create(self, op: Op, hlc: str) -> tuple[str, int]:
        record_type = RECORD_TYPES[op.type]
        household = self._household_in_scope(op.data["household_id"])
        existing = self.get(op.type, op.id)
        if existing is not None:
            same = all(existing.data.get(k) == v for k, v in op.data.items())
            if not same:
                raise _reject("conflict", f"{op.type} {op.id} already exists with other data")
            return "duplicate", existing.version
        self._permitted(op, household.data.get("village_id"), household.id, None)
        data = with_defaults(record_type, op.data)
        if op.type == "visit":
            data.update(self._visit_fields(op, household))
        elif household.data.get("status") == "archived":
            data["review"] = ["household_archived"]
        record = Record(
            op.type,
            op.id,
            self.txn.allocate_version(),
            False,
            data,
            household.data.get("village_id"),
            household.id,
        )
        self.insert(record)
        return "applied", record.version

    def _visit_fields(self, op: Op, household: Record) -> dict[str, Any]:
        """What the server adds to a visit: who, from where, when it really was, what to review."""
        ctx = self.ctx
        corrects = op.data.get("corrects")
        original = None
        if corrects is not None:
            original = self.get("visit", corrects)
            if original is None or original.household_id != household.id:
                raise _reject(
                    "validation_failed",
                    "corrects an unknown visit",
                    {"data.corrects": ["no such visit of this household"]},
                )
        problems = self.answers.get((op.op_id, op.fingerprint))
        if problems:
            fields = {f"data.answers.{k}": v for k, v in problems.items()}
            raise _reject("validation_failed", "answers do not fit the form", fields)
        visited_at = parse_offset_datetime(op.data["visited_at"])
        assert visited_at is not None  # checked when the op was parsed
        keeps_time = (
            original is not None and original.data.get("visited_at") == op.data["visited_at"]
        )
        kept = _kept_time(original) if keeps_time and original is not None else None
        if not keeps_time:
            self._check_visit_time(op, visited_at)
        effective, corrected = kept or effective_visit_time(
            visited_at, ctx.device_time, ctx.received_at
        )
        review = []
        if corrected:
            review.append("clock_corrected")
        if household.data.get("status") == "archived":
            review.append("household_archived")
        return {
            "photos": photos_in(op.data.get("answers") or {}),
            "visitor_id": ctx.user_id,
            "device_id": ctx.device_id,
            "visited_at_effective": effective.isoformat(timespec="seconds"),
            "received_at": self.received_at_seconds,
            "voided": False,
            "void_reason": None,
            "review": review,
        }

    def _check_visit_time(self, op: Op, visited_at: datetime) -> None:
        """A visit happened before the phone recorded it, and at most ``backdate`` before
        (CONTRACT §10). A correction that keeps the time of the visit it corrects is not asked:
        a visit three weeks old must stay correctable."""
        wrong = self.visit_times.problem(visited_at, op.hlc)
        if wrong is not None:
            raise _reject(
                "validation_failed", "visit time out of bounds", {"data.visited_at": [wrong]}
            )

    def _void(self, op: Op, hlc: str) -> tuple[str, int]:
        visit = self.get("visit", op.id)
        if visit is None or visit.deleted:
            raise _reject("not_found", f"no visit {op.id}")
        if not self.ctx.scope.holds(visit.village_id, visit.household_id):
            raise _reject("forbidden", "visit outside your assigned villages and households")
        if visit.data.get("voided"):
            return "applied", visit.version
        visit.data.update(
            voided=True,
            void_reason=op.data["reason"],
            voided_by=self.ctx.user_id,
            voided_at=self.ctx.received_at.isoformat(timespec="seconds"),
        )
        visit.version = self.txn.allocate_version()
        self.touch(visit)
        return "applied", visit.version

    def _update(self, op: Op, hlc: str) -> tuple[str, int]:
        record = self.get(op.type, op.id)
        if record is None or record.deleted:
            raise _reject("not_found", f"no {op.type} {op.id}")
        if not self.ctx.scope.holds(record.village_id, record.household_id):
            raise _reject("forbidden", f"{op.type} outside your assigned villages and households")
        rules = RECORD_TYPES[op.type].rules
        base = min(op.base_version or 0, record.version)
        history = self.writes.setdefault((op.type, op.id), [])
        self._permitted(
            op, record.village_id, record.household_id, self._seen(op, record, base, history)
        )
        version = self.txn.allocate_version()
        status = "applied"
        for name, value in sorted(op.data.items()):
            write = FieldWrite(
                op.type,
                op.id,
                name,
                op.op_id,
                version,
                base,
                self.device.id,
                op.device_seq,
                hlc,
                _normal(name, value),
                self.ctx.user_id,
            )
            earlier = [w for w in history if w.field == name]
            outcome = merge_write(rules.get(name, "latest"), earlier, write)
            record.data[name] = outcome.value
            history.append(write)
            self.new_writes.append(write)
            for conflict in outcome.upsert:
                self._save_conflict(conflict, record)
                if conflict.status == "open":
                    status = "conflict"
            for conflict_id in outcome.retire:
                self._retire_conflict(conflict_id)
        if _archived(record, self) and "household_archived" not in record.data.get("review", []):
            record.data["review"] = [*record.data.get("review", []), "household_archived"]
        record.version = version
        self.touch(record)
        return status, version

    def _permitted(
        self,
        op: Op,
        village_id: str | None,
        household_id: str | None,
        seen: Callable[[str], Any] | None,
    ) -> None:
        """sync.permissions.check: may this user write this op here?"""
        denied = check(self.actor, op.type, op.data, village_id, household_id, seen)
        if denied is not None:
            raise _reject(denied.code, denied.message, denied.fields)

    def _seen(
        self, op: Op, record: Record, base: int, history: list[FieldWrite]
    ) -> Callable[[str], Any]:
        """A field's value as the op's author saw it: decided by the writes its base_version
        covers and its own device's earlier writes, or the value the record was created with."""
        rules = RECORD_TYPES[op.type].rules

        def seen(name: str) -> Any:
            earlier = [w for w in history if w.field == name]
            if not earlier:
                return record.data.get(name)
            visible = heads(
                [
                    w
                    for w in earlier
                    if w.version <= base
                    or (w.device_id == self.device.id and w.device_seq < op.device_seq)
                ]
            )
            return resolve(rules.get(name, "latest"), visible)[0] if visible else None

        return seen

    def _save_conflict(self, conflict: ConflictRecord, about: Record) -> None:
        existing = self.get("conflict", conflict.id)
        version = self.txn.allocate_version()
        if existing is None:
            self.insert(
                Record(
                    "conflict",
                    conflict.id,
                    version,
                    False,
                    conflict.data(),
                    about.village_id,
                    about.household_id,
                )
            )
        else:
            existing.data, existing.deleted, existing.version = conflict.data(), False, version
            self.touch(existing)

    def _retire_conflict(self, conflict_id: str) -> None:
        existing = self.get("conflict", conflict_id)
        if existing is not None and not existing.deleted:
            existing.deleted, existing.version = True, self.txn.allocate_version()
            self.touch(existing)

    def flush(self) -> None:
        self.txn.insert_records(sorted(self.new.values(), key=lambda r: r.version))
        self.txn.update_records(sorted(self.changed.values(), key=lambda r: r.version))
        self.txn.add_field_writes(self.new_writes)
        self.txn.add_ops(list(self.logged.values()))


SHA256 = re.compile(r"[0-9a-f]{64}")


def photos_in(answers: dict[str, Any]) -> list[str]:
    """The photos (sha256 of their bytes, CONTRACT §11) a visit's answers refer to."""
    found: set[str] = set()
    for value in answers.values():
        if isinstance(value, str):  # no list built for each answer: most are yes or no
            if len(value) == 64 and SHA256.fullmatch(value):
                found.add(value)
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str) and SHA256.fullmatch(item))
    return sorted(found)


def _kept_time(original: Record) -> tuple[datetime, bool] | None:
    """A correction that keeps the time of the visit it corrects keeps that visit's effective
    time — and so the week it counted in — however wrong the phone's clock is now (CONTRACT
    §10); it is not checked against the backdate bound either, however old. (effective time,
    whether it was clock-corrected), or None when the corrected visit holds no usable one."""
    effective = parse_offset_datetime(original.data.get("visited_at_effective"))
    if effective is None:
        return None
    return effective, "clock_corrected" in (original.data.get("review") or [])


def _normal(name: str, value: Any) -> Any:
    """One spelling per value, so equal values compare equal in every merge."""
    if name == "flags" and isinstance(value, list):
        return sorted(set(value))
    return value


def _archived(record: Record, batch: _Batch) -> bool:
    if record.type == "household":
        return bool(record.data.get("status") == "archived")
    household = batch.get("household", record.household_id or "")
    return household is not None and household.data.get("status") == "archived"


@dataclass(frozen=True)
class PullPage:
    records: list[dict[str, Any]]
    cursor: str
    more: bool


def pull(
    store: Store,
    device_id: str,
    assignment: Assignment,
    cursor_text: str | None,
    limit: int,
    secret: bytes,
    load_scope: Callable[[], Scope],
    shape: Callable[[Record], dict[str, Any]] = Record.envelope,
) -> PullPage:
    """One page of what the device has not seen yet.

    1. No cursor: start at version 0 with the device's current scope.
    2. A cursor whose scope is not the device's scope any more starts a transition:
       first every record entering the scope, then ``deleted`` for every record leaving it,
       each paged by version; then the ordinary pull goes on from the cursor's version.
    3. Ordinary pull: if nothing was committed since the cursor, answer at once (O(1));
       else the next ``limit`` changes in scope by version. A page that is not full moves
       the cursor to the head read before the query, so the next pull is empty and cheap.
    """
    fingerprint = assignment.fingerprint
    cursor = (
        decode_cursor(cursor_text, secret, device_id)
        if cursor_text
        else Cursor(device_id, 0, fingerprint)
    )
    if cursor.transition is None and cursor.scope != fingerprint:
        cursor = replace(cursor, transition={"from": cursor.scope, "phase": "enter", "after": 0})
    if cursor.transition is not None:
        return _transition_page(store, cursor, load_scope(), limit, secret, shape)
    head = store.head_version()
    if head <= cursor.version:
        return PullPage([], encode_cursor(cursor, secret), False)
    found = store.changes(cursor.version, load_scope(), limit)
    full = len(found) == limit
    version = found[-1].version if full else max(head, found[-1].version if found else 0)
    next_cursor = replace(cursor, version=version)
    return PullPage([shape(r) for r in found], encode_cursor(next_cursor, secret), full)


def _transition_page(
    store: Store,
    cursor: Cursor,
    scope: Scope,
    limit: int,
    secret: bytes,
    shape: Callable[[Record], dict[str, Any]],
) -> PullPage:
    transition = dict(cursor.transition or {})
    old = _scope_of(store, transition["from"])
    entering = transition["phase"] == "enter"
    if entering:
        found = store.changes(transition["after"], scope, limit, exclude=old)
        records = [shape(r) for r in found]
    else:
        found = store.changes(transition["after"], old, limit, exclude=scope)
        records = [replace(r, deleted=True, data={}).envelope() for r in found]
    if len(found) == limit:
        transition["after"] = found[-1].version
        next_cursor = replace(cursor, scope=scope.fingerprint, transition=transition)
    elif entering:
        transition.update(phase="leave", after=0)
        next_cursor = replace(cursor, scope=scope.fingerprint, transition=transition)
    else:
        next_cursor = replace(cursor, scope=scope.fingerprint, transition=None)
    return PullPage(records, encode_cursor(next_cursor, secret), True)


def _scope_of(store: Store, fingerprint: str) -> Scope:
    """The scope a device held, from the assignment its cursor names (empty if unknown)."""
    assignment = store.assignment(fingerprint)
    if assignment is None:
        return EMPTY_SCOPE
    villages = store.household_villages(assignment.household_ids)
    return expand(assignment, store.region_tree(), villages)
