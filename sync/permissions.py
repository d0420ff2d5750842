"""Who may change what (CONTRACT §3): the one check every write goes through.

A phone's op (sync/push) and a click in the web pages (a server edit) both reach the records
through ``sync.engine.push``, which calls ``check`` for every create and update. So sync is
no side door: an op may do only what its user may do anywhere else.

The rules, beyond "the household lies in the writer's scope" (checked by the engine):

1. Problem status moves open → in_progress → resolved → verified. Anyone in scope moves a
   problem forward to resolved; only a supervisor verifies it, moves it back a stage or sets
   it open again. "Back" is judged from the status the writer saw (its ``base_version``), so
   a phone that was offline while someone else moved the problem on is not refused: its
   write is concurrent, and the merge keeps the less-closed status with a visible conflict.
2. A problem's deadline and owner (督办: ``due_date``, ``assignee_id``) are changed by
   supervisors; whoever records a problem may set them when creating it.
3. A household's classification (``category``, ``status``, ``visit_policy``) decides who is
   due when: only an admin changes it.
4. An assignee or responsible person must be an active user whose scope holds the household.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.records import PROBLEM_STATUSES
from sync.scope import Scope

SUPERVISING_ROLES = frozenset({"supervisor", "admin", "system"})
ADMINISTERING_ROLES = frozenset({"admin", "system"})

#: fields that only an admin changes, per record type
ADMIN_FIELDS: dict[str, frozenset[str]] = {
    "household": frozenset({"category", "status", "visit_policy"}),
}
#: fields that only a supervisor changes on an existing record, per record type
SUPERVISOR_FIELDS: dict[str, frozenset[str]] = {
    "problem": frozenset({"assignee_id", "due_date"}),
}
#: fields naming the user responsible for the record, per record type
RESPONSIBLE_FIELDS: dict[str, str] = {"problem": "assignee_id", "measure": "responsible_id"}


@dataclass(frozen=True)
class Actor:
    """Who writes: their user id and role, and the scope of each user their writes name as
    assignee or responsible (None for a user who does not exist or is not active)."""

    user_id: str
    role: str
    user_scopes: Mapping[str, Scope | None] = field(default_factory=dict)

    @property
    def supervises(self) -> bool:
        return self.role in SUPERVISING_ROLES

    @property
    def administers(self) -> bool:
        return self.role in ADMINISTERING_ROLES


@dataclass(frozen=True)
class Denied:
    """Why a write is refused: ``forbidden`` (the role may not) or ``validation_failed``
    (a value no one may write), with the fields at fault as the op names them."""

    code: str
    message: str
    fields: dict[str, list[str]] | None = None


def named_users(type_: str, data: Mapping[str, Any]) -> set[str]:
    """The users a write names as assignee or responsible; their scopes are looked up before
    the write lock is taken."""
    name = RESPONSIBLE_FIELDS.get(type_)
    value = data.get(name) if name else None
    return {value} if isinstance(value, str) else set()


def check(
    actor: Actor,
    type_: str,
    data: Mapping[str, Any],
    village_id: str | None,
    household_id: str | None,
    seen: Callable[[str], Any] | None = None,
) -> Denied | None:
    """Whether ``actor`` may write ``data`` to a record of ``type_`` in that household.

    ``seen`` is None for a create; for an update it gives the value of a field as the writer
    saw it (rule 1)."""
    creating = seen is None
    if not actor.administers and not creating:
        barred = sorted(ADMIN_FIELDS.get(type_, frozenset()) & data.keys())
        if barred:
            return _forbidden("only an admin changes " + ", ".join(barred), barred)
    if not actor.supervises and not creating:
        barred = sorted(SUPERVISOR_FIELDS.get(type_, frozenset()) & data.keys())
        if barred:
            return _forbidden("only a supervisor changes " + ", ".join(barred), barred)
    if type_ == "problem" and "status" in data and not actor.supervises:
        denied = _status_move(data["status"], None if seen is None else seen("status"), creating)
        if denied is not None:
            return denied
    name = RESPONSIBLE_FIELDS.get(type_)
    user_id = data.get(name) if name else None
    if name and user_id is not None:
        scope = actor.user_scopes.get(user_id)
        if scope is None or not scope.holds(village_id, household_id):
            message = "must be an active user whose villages hold this household"
            return Denied("validation_failed", message, {f"data.{name}": [message]})
    return None


def _status_move(new: Any, seen: Any, creating: bool) -> Denied | None:
    """Rule 1 for a writer who does not supervise: forward, and not past resolved. Setting an
    existing problem open is never a step forward; a status not known (None) counts as open."""
    if new == "verified":
        return _forbidden("only a supervisor verifies a problem", ["status"])
    if creating or new not in PROBLEM_STATUSES:
        return None  # a new problem; or a value the field check refuses
    before = PROBLEM_STATUSES.index(seen) if seen in PROBLEM_STATUSES else 0
    if new == "open" or PROBLEM_STATUSES.index(new) < before:
        return _forbidden("only a supervisor moves a problem back", ["status"])
    return None


def _forbidden(message: str, fields: list[str]) -> Denied:
    return Denied("forbidden", message, {f"data.{name}": [message] for name in fields})
