"""Form versions on the server (CONTRACT §9): published as ``form`` records that every device
pulls, and used to check the answers of each visit against the version it was filled with.

The database is the source of truth at run time. A form version exists once it is published,
and a published version never changes, so a visit filled months ago on a phone that has been
offline since is checked by exactly the rules it was filled with, whatever came after. The
definitions shipped in forms/definitions are published by ``zoufang db upgrade``, ``zoufang
forms publish`` and seed-demo; an XLSForm import publishes the next version of its form.
Published versions are cached per app since they never change; a miss reads the database, so
a version published by another process is found.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

import orjson
from flask import current_app
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

import forms
from server.service import audit, store
from server.storage.models import Form
from server.storage.store import TABLES, SqlTxn
from sync.engine import AnswerCheck
from sync.store import Record

FORM_NAMESPACE = uuid.UUID("0c7b9d3e-4f0a-4a55-8f57-6b1d7e2c9a10")
FORMS: Table = Form.__table__
CACHE = "zoufang_published_forms"

FormKey = tuple[str, int]


class FormVersionConflict(RuntimeError):
    """A definition published under a (form_id, version) that already holds a different one."""

    def __init__(self, clashes: list[FormKey]) -> None:
        names = ", ".join(f"{form_id} version {version}" for form_id, version in clashes)
        super().__init__(
            f"{names}: already published with a different definition. A published version "
            "never changes, since visits were filled with it; publish the change as a new version."
        )
        self.clashes = clashes


@dataclass(frozen=True)
class ImportResult:
    """What an import did: ``published`` a new version, found it ``unchanged`` (identical to
    the latest published version, which ``form`` then is), or only checked it (``dry_run``)."""

    form: forms.FormVersion
    status: str


@cache
def shipped_versions() -> tuple[forms.FormVersion, ...]:
    """Every version of every definition shipped in forms/definitions."""
    return tuple(forms.load_definitions().all_versions())


def form_record_id(form_id: str, version: int) -> str:
    return str(uuid.uuid5(FORM_NAMESPACE, f"{form_id}@{version}"))


def publish_forms(actor: str | None) -> int:
    """Publish each shipped form version not published yet; the number newly published.

    Raises FormVersionConflict, publishing nothing, when a shipped file differs from the
    version already published under its number.
    """
    return len(publish_versions(shipped_versions(), actor))


def publish_versions(
    versions: Iterable[forms.FormVersion], actor: str | None
) -> list[forms.FormVersion]:
    """Publish these versions in one transaction, skipping those already published as they
    are; the ones newly published. Raises FormVersionConflict if any differs from its
    published namesake, and then publishes none."""
    versions = list(versions)
    with store().write() as txn:
        stored = _stored(txn.conn, {v.form_id for v in versions})
        clashes = sorted(
            _key(v) for v in versions if _key(v) in stored and stored[_key(v)] != v.to_record_data()
        )
        if clashes:
            raise FormVersionConflict(clashes)
        new = [v for v in versions if _key(v) not in stored]
        _insert(txn, new, actor, "forms_published")
    _remember(new)
    return new


def publish_next_version(
    definition: dict[str, Any], actor: str | None, *, dry_run: bool = False
) -> ImportResult:
    """Publish the single version of a definition document as the next version of its form,
    whatever number it carries. Without a policy it keeps the previous version's; if it is
    identical to the latest version, nothing is published. Raises DefinitionError if the
    document has mistakes."""
    forms.parse_definition(definition)
    form_id = definition["form_id"]
    (doc,) = definition["versions"]
    if dry_run:
        with store().read() as conn:
            form, new = _next_version(conn, form_id, doc)
        return ImportResult(form, "dry_run" if new else "unchanged")
    with store().write() as txn:
        form, new = _next_version(txn.conn, form_id, doc)
        if new:
            _insert(txn, [form], actor, "form_imported")
    if new:
        _remember([form])
    return ImportResult(form, "published" if new else "unchanged")


def import_xlsform(
    source: Path | IO[bytes],
    *,
    form_id: str | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    filename: str | None = None,
    media: Path | None = None,
) -> ImportResult:
    """An XLSForm workbook published as the next version of its form (``form_id`` overrides
    the settings sheet). Raises forms.xlsform.XLSFormError listing every problem, or
    server.admin.uploads.UploadTooLarge for a workbook that expands beyond the upload limits.
    ``filename`` names an uploaded stream: the form id of last resort, and in messages."""
    # pyxform takes half a second to import: only an import of a form pays for it
    from server.admin.xlsform_io import convert_workbook

    # The number in the settings sheet does not matter: publish_next_version numbers it.
    definition = convert_workbook(
        source, form_id=form_id, version=1, filename=filename, media=media
    )
    return publish_next_version(definition, actor, dry_run=dry_run)


def published_form(form_id: str, version: int) -> forms.FormVersion | None:
    """The published version a visit names, or None if this server never published it."""
    form = _cache().get((form_id, version))
    if form is None:
        with store().read() as conn:
            data = _stored(conn, {form_id}).get((form_id, version))
        if data is None:
            return None
        form = _form_of(data)
        _remember([form])
    return form


def published_versions() -> list[forms.FormVersion]:
    """Every published form version, by form id and version."""
    with store().read() as conn:
        stored = _stored(conn, None)
    return [_form_of(stored[key]) for key in sorted(stored)]


def form_overview() -> list[dict[str, Any]]:
    """Each form version this server knows, published or only shipped, for ``forms list``."""
    published = {_key(v): v for v in published_versions()}
    shipped = {_key(v): v for v in shipped_versions()}
    overview = []
    for key in sorted(published.keys() | shipped.keys()):
        form = published.get(key) or shipped[key]
        if key not in published:
            status = "not published"
        elif key not in shipped:
            status = "published (imported)"
        elif published[key].to_record_data() != shipped[key].to_record_data():
            status = "published; the shipped file differs"
        else:
            status = "published"
        overview.append(
            {
                "form_id": form.form_id,
                "version": form.version,
                "title": dict(form.title),
                "policy": form.policy,
                "fields": form.field_count(),
                "status": status,
            }
        )
    return overview


def answer_checker() -> AnswerCheck:
    """The check of a visit's answers, for one push (sync.engine.PushContext.check_answers):
    the app's published forms and its memo of checked answers are looked up once here, not
    once per visit, since each look-up of ``current_app`` resolves a werkzeug context local.

    The check: field → message codes, by the published version the visit was filled with; a
    visit without a form carries no answers to check. ``today()`` and ``now()`` read the
    visit's ``visited_at`` as the phone recorded it, the local time the phone computed them by.
    A repeat asked once per person of the household must name its people: those stored, and
    those ``batch_people`` the same push creates (a person met on the visit and recorded with
    it)."""
    cache = _cache()
    memo: dict[Any, dict[str, list[str]]] = current_app.extensions.setdefault(ANSWERS_MEMO, {})

    def check(
        form_id: str | None,
        version: int | None,
        answers: dict[str, Any],
        visited_at: str | None = None,
        household_id: str | None = None,
        batch_people: frozenset[str] = frozenset(),
    ) -> dict[str, list[str]]:
        if form_id is None:
            return {"_form": ["answers need a form_id"]} if answers else {}
        if version is None:
            return {"_form": [f"form {form_id} needs its form_version"]}
        form = cache.get((form_id, version)) or published_form(form_id, version)
        if form is None:
            return {"_form": [f"form {form_id} version {version} is not published on this server"]}
        if form.seeds_people and household_id:
            people = _people_of(household_id, batch_people)
            clock = forms.visit_clock(visited_at)
            return forms.validate_answers(form, answers, people, clock=clock)
        clock = forms.visit_clock(visited_at) if form.reads_clock else None
        key = _answers_key(answers)
        if key is None:
            return forms.validate_answers(form, answers, clock=clock)
        found = memo.get((form_id, version, clock, key))
        if found is None:
            if len(memo) >= ANSWERS_MEMO_SIZE:
                memo.clear()
            found = memo[(form_id, version, clock, key)] = forms.validate_answers(
                form, answers, clock=clock
            )
        return {name: list(codes) for name, codes in found.items()}

    return check


def _people_of(household_id: str, batch_people: frozenset[str]) -> list[str]:
    """The ids of a household's people as stored, and those the same push creates."""
    people = TABLES["person"]
    with store().read() as conn:
        query = select(people.c.id).where(people.c.household_id == household_id)
        return [*conn.scalars(query), *batch_people]


#: answers already checked, by published form version (and the visit's clock, for a form that
#: reads today() or now()): the week's checklist is a dozen yes/no answers, so most visits
#: repeat one of a few combinations, and a published version never changes. Checking them was
#: 6 % of a push's CPU (bench/README.md). A form with a repeat seeded from the household's
#: people is checked against them afresh each time.
ANSWERS_MEMO = "zoufang_answers_checked"
ANSWERS_MEMO_SIZE = 4096


#: the types of the answers a memo key holds: a list or an object (a multiple choice, a
#: repeat) is checked afresh; exact types, so that no subclass spells itself otherwise
_KEYED_ANSWERS = frozenset({str, int, float, bool, type(None)})


def _answers_key(answers: dict[str, Any]) -> bytes | None:
    """The answers as a key: their JSON with sorted keys, in which ``true`` is not ``1`` nor
    ``1`` ``1.0`` (equal in Python, not in a form). JSON spells distinct values distinctly but
    for nan and infinities (orjson writes null): answers holding one are checked afresh, as are
    those orjson refuses (an int beyond 64 bits, a lone surrogate), lists and objects."""
    if not isinstance(answers, dict):
        return None
    kinds = set(map(type, answers.values()))
    if not kinds <= _KEYED_ANSWERS:
        return None
    if float in kinds and not all(
        math.isfinite(value) for value in answers.values() if type(value) is float
    ):
        return None
    try:
        return orjson.dumps(answers, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def _next_version(
    conn: Connection, form_id: str, doc: dict[str, Any]
) -> tuple[forms.FormVersion, bool]:
    """The version ``doc`` becomes, and whether it is new rather than the latest itself."""
    stored = _stored(conn, {form_id})
    latest = _form_of(stored[max(stored)]) if stored else None
    if latest is None:
        return forms.FormVersion.from_dict(form_id, {**doc, "version": 1}), True
    doc = {**doc, "version": latest.version + 1}
    if doc.get("policy") is None:
        doc["policy"] = latest.policy
    form = forms.FormVersion.from_dict(form_id, doc)
    if {**form.to_record_data(), "version": latest.version} == latest.to_record_data():
        return latest, False
    return form, True


def _stored(conn: Connection, form_ids: Collection[str] | None) -> dict[FormKey, dict[str, Any]]:
    """The data of the published versions of these forms (of all forms if None)."""
    query = select(FORMS.c.data).where(~FORMS.c.deleted)
    if form_ids is not None:
        query = query.where(FORMS.c.form_id.in_(sorted(form_ids)))
    stored: dict[FormKey, dict[str, Any]] = {}
    for (text,) in conn.execute(query):
        data = json.loads(text)
        stored[(data["form_id"], data["version"])] = data
    return stored


def _insert(txn: SqlTxn, versions: list[forms.FormVersion], actor: str | None, action: str) -> None:
    if not versions:
        return
    records = [
        Record("form", form_record_id(*_key(v)), txn.allocate_version(), False, v.to_record_data())
        for v in versions
    ]
    txn.insert_records(records)
    published = [f"{v.form_id}@{v.version}" for v in versions]
    audit(txn.conn, action, actor, details={"count": len(versions), "forms": published})


def _form_of(data: dict[str, Any]) -> forms.FormVersion:
    """The form version of a published record; it was validated when it was published."""
    keys = ("version", "title", "policy", "fields")
    doc: dict[str, Any] = {key: data[key] for key in keys if key in data}
    return forms.FormVersion.from_dict(data["form_id"], doc)


def _key(form: forms.FormVersion) -> FormKey:
    return (form.form_id, form.version)


def _cache() -> dict[FormKey, forms.FormVersion]:
    cached: dict[FormKey, forms.FormVersion] = current_app.extensions.setdefault(CACHE, {})
    return cached


def _remember(versions: Iterable[forms.FormVersion]) -> None:
    _cache().update({_key(v): v for v in versions})
