"""The SQL implementation of sync's Store protocol, for SQLite and PostgreSQL alike.

SQLAlchemy Core, not the ORM, on the sync path: a push of 500 visits is a handful of
``executemany`` statements. Every write transaction holds the ``version`` counter — on SQLite
through ``BEGIN IMMEDIATE``, on PostgreSQL through ``SELECT … FOR UPDATE`` on its row — so
versions are handed out in commit order and a pull never skips a record committed late.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from operator import itemgetter
from types import MappingProxyType
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    DateTime,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.selectable import Select

from server.storage.db import writing
from server.storage.models import (
    SYNCED_MODELS,
    AssignmentSnapshot,
    BlobRef,
    Counter,
    Device,
    Op,
    Setting,
    UserReach,
)
from server.storage.models import FieldWrite as FieldWriteRow
from server.timeutil import utcnow
from sync.merge import FieldWrite
from sync.records import parse_offset_datetime
from sync.scope import Assignment, RegionTree, Scope
from sync.store import DeviceState, Record, StoredOp

TABLES: dict[str, Table] = {name: model.__table__ for name, model in SYNCED_MODELS.items()}  # type: ignore[misc]
COUNTERS: Table = Counter.__table__  # type: ignore[assignment]
DEVICES: Table = Device.__table__  # type: ignore[assignment]
OPS: Table = Op.__table__  # type: ignore[assignment]
WRITES: Table = FieldWriteRow.__table__  # type: ignore[assignment]
BLOB_REFS: Table = BlobRef.__table__  # type: ignore[assignment]
SNAPSHOTS: Table = AssignmentSnapshot.__table__  # type: ignore[assignment]
SETTINGS: Table = Setting.__table__  # type: ignore[assignment]
REACH: Table = UserReach.__table__  # type: ignore[assignment]
HEAD = select(COUNTERS.c.value).where(COUNTERS.c.name == "version")
#: what changes with any committed change of a region (SqlStore.region_tree)
REGIONS_MARK = select(func.count(), func.sum(TABLES["region"].c.version))
#: the device whose ops are the server's own edits; whoever makes one audits it with its reason
SERVER_DEVICE = "server"
CHUNK = 500
REPORT_WORK_MEM = "32MB"
T = TypeVar("T")
#: one place of a user record's reach (sync.store.Record.reach)
Place = tuple[str | None, str | None]


def dumps(value: Any) -> str:
    """Compact UTF-8 JSON. orjson: the push path serializes every record, and it is 5× faster."""
    return orjson.dumps(value).decode()


loads = orjson.loads


def canonical_dumps(value: Any) -> str:
    """JSON with sorted keys through orjson: the fast spelling sync.ops.canonical_json uses where
    it is byte for byte the stdlib's (it decides where; orjson raises TypeError elsewhere)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def read_setting(conn: Connection, key: str) -> Any:
    """The value stored under ``key`` in ``settings`` (JSON), None when there is none."""
    stored = conn.execute(select(SETTINGS.c.value).where(SETTINGS.c.key == key)).scalar()
    return None if stored is None else loads(stored)


def write_setting(conn: Connection, key: str, value: Any, actor: str | None = None) -> None:
    """Store ``value`` (JSON) under ``key`` in ``settings``, in the caller's transaction."""
    conn.execute(delete(SETTINGS).where(SETTINGS.c.key == key))
    conn.execute(
        insert(SETTINGS).values(key=key, value=dumps(value), updated_at=utcnow(), updated_by=actor)
    )


def utc_naive(value: Any) -> datetime | None:
    """An ISO time with offset as the naive UTC datetime the typed columns hold."""
    return _utc_naive_text(value) if isinstance(value, str) else None


@lru_cache(maxsize=1024)
def _utc_naive_text(value: str) -> datetime | None:
    """utc_naive of a string, remembered: a push's time is in every op-log, audit and visit row
    of the push (three readings per visit), and a datetime is immutable."""
    parsed = parse_offset_datetime(value)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed else None


def typed_columns(record: Record) -> dict[str, Any]:
    """The columns each table adds to the shared ones, read off the record's data."""
    d = record.data
    match record.type:
        case "region":
            keys = {
                "parent_id": d.get("parent_id"),
                "level": d["level"],
                "name": d["name"],
                "code": d.get("code"),
            }
        case "household":
            keys = {
                "code": d.get("code"),
                "category": d.get("category"),
                "status": d.get("status") or "active",
                "visit_policy": d.get("visit_policy") or "weekly",
            }
        case "visit":
            keys = {
                "visitor_id": d.get("visitor_id"),
                "device_id": d.get("device_id"),
                "visited_at_effective": utc_naive(d.get("visited_at_effective") or d["visited_at"]),
                "received_at": utc_naive(d.get("received_at")),
                "voided": bool(d.get("voided")),
                "voided_at": utc_naive(d.get("voided_at")),
                "corrects": d.get("corrects"),
            }
        case "problem":
            keys = {
                "status": d.get("status") or "open",
                "category": d.get("category"),
                "assignee_id": d.get("assignee_id"),
                "due_date": d.get("due_date"),
            }
        case "measure":
            keys = {"status": d.get("status") or "planned"}
        case "form":
            keys = {"form_id": d["form_id"], "form_version": d["version"]}
        case "conflict":
            keys = {
                "record_type": d["record_type"],
                "record_id": d["record_id"],
                "status": d["status"],
            }
        case _:
            keys = {}
    return keys


def record_row(record: Record) -> dict[str, Any]:
    return {
        "id": record.id,
        "version": record.version,
        "deleted": record.deleted,
        "village_id": record.village_id,
        "household_id": record.household_id,
        "data": dumps(record.data),
        **typed_columns(record),
    }


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of ``size``: IN lists and inserts of a bounded length."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        #: for a lone SELECT, which needs no transaction: on PostgreSQL the BEGIN and the
        #: ROLLBACK around it were two of an empty pull's round trips
        self.reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.postgres else engine
        )
        #: assignments known to be stored: a snapshot is never changed or deleted, so a later
        #: pull of the same assignment skips the look-up (a fifth of an empty pull)
        self.remembered: set[str] = set()
        #: (the regions' mark, their tree) of region_tree
        self._regions: tuple[tuple[Any, ...], RegionTree] | None = None

    @contextmanager
    def write(self) -> Iterator[SqlTxn]:
        with writing(self.engine) as conn:
            txn = SqlTxn(conn, self.postgres)
            yield txn
            txn.finish()

    @contextmanager
    def write_unversioned(self) -> Iterator[Connection]:
        """A write transaction of rows no pull carries (photos): it takes no version, so
        it never waits for the version counter; on SQLite still one writer at a time."""
        with writing(self.engine) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def report(self) -> Iterator[Connection]:
        """A connection for the reports' aggregate queries. On PostgreSQL its transaction may
        hash and sort a county's 50,000 households in memory (the default work_mem of 4 MB
        spills them to disk)."""
        with self.engine.connect() as conn:
            sorts_in_memory(conn)
            yield conn

    def head_version(self) -> int:
        with self.reader.connect() as conn:
            value = conn.execute(HEAD).scalar()
        return int(value or 0)

    def changes(
        self, after: int, scope: Scope, limit: int, exclude: Scope | None = None
    ) -> list[Record]:
        query = _changes_query(_shape(scope), _shape(exclude) if exclude else None)
        params = {"after": after, "limit": limit, **_scope_params("in", scope)}
        if exclude is not None:
            params.update(_scope_params("out", exclude))
        with self.engine.connect() as conn:
            rows = conn.execute(query, params).all()
        return [
            Record(
                r.type,
                r.id,
                r.version,
                bool(r.deleted),
                loads(r.data),
                r.village_id,
                r.household_id,
            )
            for r in rows
        ]

    def region_tree(self) -> RegionTree:
        """The live regions, read again only when they changed: every push and every report
        asks, and a province's tree is tens of thousands of rows. A region is never deleted,
        only marked so with a new version, and every change takes a version greater than any
        the row held: so the count of the rows and the sum of their versions differ after any
        committed change, whatever the order of the commits (PostgreSQL hands versions out
        before it commits them)."""
        table = TABLES["region"]
        with self.engine.connect() as conn:  # not self.reader: see bench/README.md (issue 16)
            mark = tuple(conn.execute(REGIONS_MARK).one())
            cached = self._regions
            if cached is not None and cached[0] == mark:
                return cached[1]
            rows = conn.execute(
                select(table.c.id, table.c.parent_id, table.c.level).where(~table.c.deleted)
            ).all()
        # the rows may be newer than the mark, never older: the next call reads them again
        tree = MappingProxyType({r.id: (r.parent_id, r.level) for r in rows})
        self._regions = (mark, tree)
        return tree

    def household_villages(self, household_ids: Iterable[str]) -> dict[str, str]:
        table = TABLES["household"]
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(household_ids):
                rows = conn.execute(
                    select(table.c.id, table.c.village_id).where(table.c.id.in_(chunk))
                ).all()
                out.update({r.id: r.village_id for r in rows})
        return out

    def remember_assignment(self, assignment: Assignment) -> None:
        if assignment.fingerprint in self.remembered:
            return
        if self.assignment(assignment.fingerprint) is not None:
            self.remembered.add(assignment.fingerprint)
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(SNAPSHOTS).values(
                        fingerprint=assignment.fingerprint,
                        region_ids=dumps(list(assignment.region_ids)),
                        household_ids=dumps(list(assignment.household_ids)),
                    )
                )
        except IntegrityError:
            pass  # another process remembered the same assignment first
        self.remembered.add(assignment.fingerprint)

    def assignment(self, fingerprint: str) -> Assignment | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SNAPSHOTS).where(SNAPSHOTS.c.fingerprint == fingerprint)
            ).first()
        if row is None:
            return None
        return Assignment(tuple(loads(row.region_ids)), tuple(loads(row.household_ids)))


#: what a scope's SQL depends on: whether it holds everything, and which of its sets are empty
ScopeShape = tuple[bool, bool, bool, bool]


def _shape(scope: Scope) -> ScopeShape:
    return (
        scope.everything,
        bool(scope.region_ids),
        bool(scope.village_ids),
        bool(scope.household_ids),
    )


def _scope_params(name: str, scope: Scope) -> dict[str, list[str]]:
    """The values of a scope's IN lists, for the query ``_changes_query`` built for its shape."""
    return {
        f"{name}_regions": sorted(scope.region_ids),
        f"{name}_villages": sorted(scope.village_ids),
        f"{name}_households": sorted(scope.household_ids),
    }


@cache
def _changes_query(scope: ScopeShape, exclude: ScopeShape | None) -> Select[Any]:
    """The records with version > :after in a scope (and not in another), by version: one
    SELECT per table, at most :limit each, in one UNION ALL. Built once per shape of the scopes,
    with their ids as bound lists: building the statement anew was a tenth of a pull's CPU."""
    parts = []
    for type_, table in TABLES.items():
        where = [table.c.version > bindparam("after"), _visible(table, type_, "in", scope)]
        if exclude is not None:
            where.append(not_(_visible(table, type_, "out", exclude)))
        part = (
            select(literal(type_).label("type"), *_record_columns(table))
            .where(and_(*where))
            .order_by(table.c.version)
            .limit(bindparam("limit"))
        )
        parts.append(select(part.subquery()))
    combined = union_all(*parts).subquery()
    return select(combined).order_by(combined.c.version).limit(bindparam("limit"))


RECORD_COLUMNS = ("id", "version", "deleted", "village_id", "household_id", "data")
#: the ops log's columns, in the order of StoredOp's fields
OP_COLUMNS = StoredOp._fields


def _record_columns(table: Table) -> list[ColumnElement[Any]]:
    """The columns a Record is read from, in the order of its fields."""
    return [table.c[name] for name in RECORD_COLUMNS]


def _ids(name: str) -> BindParameter[Any]:
    return bindparam(name, expanding=True)


def _visible(table: Table, type_: str, name: str, shape: ScopeShape) -> ColumnElement[bool]:
    """SQL for sync.store.visible: the same rule, evaluated by the database, for a scope of
    ``shape`` whose ids are the bound lists ``<name>_regions`` and so on."""
    everything, regions, villages, households = shape
    if type_ == "form" or everything:
        return true()
    if type_ == "region":
        return table.c.id.in_(_ids(f"{name}_regions")) if regions else false()
    if type_ == "user":
        return _meets(table, name, shape)
    clauses = []
    if villages:
        clauses.append(table.c.village_id.in_(_ids(f"{name}_villages")))
    if households:
        clauses.append(table.c.household_id.in_(_ids(f"{name}_households")))
    return or_(*clauses) if clauses else false()


def _meets(table: Table, name: str, shape: ScopeShape) -> ColumnElement[bool]:
    """SQL for sync.store.meets: a user reaches the scope through one of their places."""
    _, regions, villages, households = shape
    places = []
    if regions:
        places.append(
            and_(REACH.c.household_id.is_(None), REACH.c.region_id.in_(_ids(f"{name}_regions")))
        )
    if villages:
        places.append(
            and_(
                REACH.c.household_id.is_not(None),
                REACH.c.region_id.in_(_ids(f"{name}_villages")),
            )
        )
    if households:
        places.append(REACH.c.household_id.in_(_ids(f"{name}_households")))
    if not places:
        return false()
    return exists().where(REACH.c.user_id == table.c.id, or_(*places))


class SqlTxn:
    def __init__(self, conn: Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres
        value = conn.execute(HEAD.with_for_update() if postgres else HEAD).scalar()
        if value is None:
            conn.execute(insert(COUNTERS).values(name="version", value=0))
        self.start = self.version = int(value or 0)

    def finish(self) -> None:
        if self.version != self.start:
            self.conn.execute(
                update(COUNTERS).where(COUNTERS.c.name == "version").values(value=self.version)
            )

    def allocate_version(self) -> int:
        self.version += 1
        return self.version

    def device(self, device_id: str) -> DeviceState | None:
        row = self.conn.execute(select(DEVICES).where(DEVICES.c.id == device_id)).first()
        if row is None:
            return None
        return DeviceState(
            row.id,
            row.user_id,
            row.revoked_at is not None,
            row.next_seq,
            row.floor_hlc,
            row.last_hlc,
        )

    def save_device(self, device: DeviceState) -> None:
        """The device's seq and clock, and when it last synced (in the same transaction)."""
        self.conn.execute(
            update(DEVICES)
            .where(DEVICES.c.id == device.id)
            .values(
                next_seq=device.next_seq,
                last_hlc=device.last_hlc,
                last_sync_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )

    def ops(self, op_ids: Iterable[str]) -> dict[str, StoredOp]:
        out: dict[str, StoredOp] = {}
        order = "ORDER BY received_at, device_seq"  # an op_id twice: the first one counts
        for values in self._by_ids(OPS, OP_COLUMNS, "op_id", op_ids, order):
            row = dict(zip(OP_COLUMNS, values, strict=True))
            row["error"] = loads(row["error"]) if row["error"] else None
            row["received_at"] = _time_read(row["received_at"]).isoformat()
            out.setdefault(row["op_id"], StoredOp(**row))
        return out

    def add_ops(self, ops: list[StoredOp]) -> None:
        if ops:
            # the ops log is also the audit of what phones changed: the view audit_trail
            # reads it beside audit_log (migration 0013)
            self._insert_values(OPS, OP_COLUMNS, [op_values(op) for op in ops])

    def records(self, type_: str, ids: Iterable[str]) -> dict[str, Record]:
        out: dict[str, Record] = {}
        for id_, version, deleted, village_id, household_id, data in self._by_ids(
            TABLES[type_], RECORD_COLUMNS, "id", ids
        ):
            out[id_] = Record(
                type_, id_, version, bool(deleted), loads(data), village_id, household_id
            )
        if type_ == "user":
            reach = self._reach(out)
            out = {i: replace(r, reach=reach.get(i, ())) for i, r in out.items()}
        return out

    def _by_ids(
        self, table: Table, columns: tuple[str, ...], key: str, ids: Iterable[str], order: str = ""
    ) -> Iterator[tuple[Any, ...]]:
        """``columns`` of the rows of ``table`` whose ``key`` is one of ``ids``, as plain tuples
        through the driver. A push asks this of its 500 op ids and 500 visit ids: Core's
        expanding IN list rendered and bound 500 parameters on every call, three times what
        the database took to answer (bench/profile_push.py)."""
        for chunk in chunks(ids):
            sql = _by_ids_sql(table, columns, key, len(chunk), order, self.postgres)
            yield from self.conn.exec_driver_sql(sql, tuple(chunk))

    def _reach(self, user_ids: Iterable[str]) -> dict[str, tuple[Place, ...]]:
        found: dict[str, list[Place]] = {}
        for chunk in chunks(user_ids):
            query = select(REACH).where(REACH.c.user_id.in_(chunk)).order_by(REACH.c.id)
            for r in self.conn.execute(query):
                found.setdefault(r.user_id, []).append((r.region_id, r.household_id))
        return {user_id: tuple(places) for user_id, places in found.items()}

    def _write_reach(self, records: list[Record]) -> None:
        """A user record's places replace the ones it had."""
        users = [r for r in records if r.type == "user"]
        for chunk in chunks([r.id for r in users]):
            self.conn.execute(delete(REACH).where(REACH.c.user_id.in_(chunk)))
        rows = [
            {"user_id": r.id, "region_id": region_id, "household_id": household_id}
            for r in users
            for region_id, household_id in r.reach
        ]
        if rows:
            self._insert(REACH, rows)

    def insert_records(self, records: list[Record]) -> None:
        for type_, rows in _rows_by_type(records).items():
            self._insert(TABLES[type_], rows)
        self._write_reach(records)
        refs = [
            {"sha256": sha, "visit_id": r.id}
            for r in records
            if r.type == "visit"
            for sha in r.data.get("photos") or []
        ]
        if refs:
            self._insert(BLOB_REFS, refs)

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """One ``executemany`` of plain tuples through the driver. Core's ``insert()`` processed
        every value of every row (bind processors, the DateTime one above all): that was 15 %
        of a push's CPU. Every row has the keys of the first one."""
        columns = tuple(rows[0])
        assert len(columns) > 1  # itemgetter of one column gives a value, not a tuple
        values = itemgetter(*columns)
        self._insert_values(table, columns, [values(row) for row in rows])

    def _insert_values(
        self, table: Table, columns: tuple[str, ...], params: list[tuple[Any, ...]]
    ) -> None:
        """_insert of rows already in the order of ``columns``."""
        sql, times = _insert_sql(table, columns, self.postgres)
        if self.postgres:
            self._copy(table, columns, params)
            return
        if times:
            params = [_sqlite_times(p, times) for p in params]
        self.conn.exec_driver_sql(sql, params)

    def _copy(self, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL: the rows through ``COPY … FROM STDIN``. psycopg's executemany sends each
        row as a query of its own in a pipeline, dumping it in Python: ~20 µs of a pushed
        visit's ~90 µs of CPU (bench/profile_push.py); COPY formats the rows in C. The same
        rows, defaults, constraints and triggers as INSERT (COPY skips rules; the schema has
        none). A driver error is raised as SQLAlchemy raises it from any statement, with a
        lost connection invalidated: the API answers 503 to OperationalError (http/errors.py)."""
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        dialect = self.conn.dialect
        driver = self.conn.connection.driver_connection
        assert driver is not None
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, driver, None)
            if lost:
                self.conn.invalidate(error)
            raise DBAPIError.instance(
                sql,
                None,
                error,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=dialect,
                connection_invalidated=lost,
            ) from error

    def update_records(self, records: list[Record]) -> None:
        for type_, rows in _rows_by_type(records).items():
            table = TABLES[type_]
            statement = (
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({k: bindparam(k) for k in rows[0] if k != "id"})
            )
            self.conn.execute(statement, [{**row, "_id": row["id"]} for row in rows])
        self._write_reach(records)

    def field_writes(self, type_: str, ids: Iterable[str]) -> dict[str, list[FieldWrite]]:
        out: dict[str, list[FieldWrite]] = {i: [] for i in ids}
        for chunk in chunks(out):
            query = select(WRITES).where(
                WRITES.c.record_type == type_, WRITES.c.record_id.in_(chunk)
            )
            for r in self.conn.execute(query.order_by(WRITES.c.id)):
                row = dict(r._mapping)
                del row["id"]
                out[r.record_id].append(FieldWrite(**{**row, "value": loads(r.value)}))
        return out

    def add_field_writes(self, writes: list[FieldWrite]) -> None:
        if writes:
            self._insert(WRITES, [{**vars(w), "value": dumps(w.value)} for w in writes])


def sorts_in_memory(conn: Connection) -> None:
    """Let a report's transaction on PostgreSQL hash and sort a county's households in memory
    (REPORT_WORK_MEM; the default of 4 MB spills them to disk). SQLite needs nothing."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")


def op_values(op: StoredOp) -> tuple[Any, ...]:
    """The op-log row of ``op``, in OP_COLUMNS order (StoredOp's fields, so the op itself but
    three): its hlc cut to the column, its error as JSON, its time as the column holds it. A
    tuple, not a dict: a push of 500 builds 500 of them."""
    return (
        *op[:_HLC],
        op.hlc[:40],
        *op[_HLC + 1 : _ERROR],
        dumps(op.error) if op.error else None,
        utc_naive(op.received_at),
    )


_HLC, _ERROR = OP_COLUMNS.index("hlc"), OP_COLUMNS.index("error")
assert OP_COLUMNS[_ERROR + 1 :] == ("received_at",)


@cache
def _insert_sql(table: Table, columns: tuple[str, ...], postgres: bool) -> tuple[str, list[int]]:
    """The driver's INSERT for ``columns`` of ``table``, and which of them SQLite stores as
    text in SQLAlchemy's DateTime spelling (PostgreSQL's driver takes datetimes as they are)."""
    mark = "%s" if postgres else "?"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)})"
        f" VALUES ({', '.join(mark for _ in columns)})"
    )
    times = [] if postgres else [i for i, c in enumerate(columns) if _is_time(table, c)]
    return sql, times


@lru_cache(maxsize=2048)
def _by_ids_sql(
    table: Table, columns: tuple[str, ...], key: str, count: int, order: str, postgres: bool
) -> str:
    """The driver's SELECT of SqlTxn._by_ids for ``count`` ids."""
    marks = ", ".join(["%s" if postgres else "?"] * count)
    return f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} IN ({marks}) {order}"


def _time_read(value: datetime | str) -> datetime:
    """A DateTime column read through the driver: PostgreSQL's gives a datetime, SQLite's the
    text SQLAlchemy stored (_sqlite_time)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _is_time(table: Table, column: str) -> bool:
    return isinstance(table.c[column].type, DateTime)


def _sqlite_times(values: tuple[Any, ...], times: list[int]) -> tuple[Any, ...]:
    """Naive UTC datetimes as SQLAlchemy's SQLite DateTime stores (and compares) them."""
    out = list(values)
    for i in times:
        if out[i] is not None:
            out[i] = _sqlite_time(out[i])
    return tuple(out)


@lru_cache(maxsize=1024)
def _sqlite_time(value: datetime) -> str:
    """One time in that spelling, remembered: the push's time is in three rows per visit."""
    return value.isoformat(" ", "microseconds")


def _rows_by_type(records: list[Record]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(record.type, []).append(record_row(record))
    return grouped
