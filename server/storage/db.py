"""The database handle and the engine settings that make SQLite a serious store.

SQLite: WAL so readers never wait for the writer, ``synchronous=NORMAL`` (durable across a
process crash, which is the failure a phone-facing server meets), a busy timeout instead of
instant "database is locked", and write transactions that start with ``BEGIN IMMEDIATE`` so
two pushes never deadlock upgrading a read lock.

``writing(engine)`` is every write transaction's way in. On SQLite it first passes a gate: one
writer at a time per database file, queued on a lock in this process and on a kernel lock of a
file beside the database across processes. SQLite's own busy handler makes a waiting writer
poll, sleeping up to 100 ms between tries, so under load a push slept on long after the lock
was free and the other threads of its worker took the cores meanwhile (bench/README.md).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase

log = logging.getLogger(__name__)

WRITE_OPTION = "zoufang_write"
#: how long a writer waits for the gate, as SQLite's busy timeout below
GATE_TIMEOUT_S = 30.0
#: a pooled PostgreSQL connection idle this long is pinged before it is used
PING_IDLE_S = 2.0
#: how often a server's worker copies the SQLite WAL back into the database
CHECKPOINT_EVERY_S = 1.0
#: with that thread, the WAL size (in pages: 80 MiB of 8 KiB ones) at which a commit still
#: checkpoints itself: the WAL starts again from its beginning only when a writer finds it all
#: copied back, and under a steady stream of pushes the thread's copy may never catch the last
#: commit; the committer, holding the write gate, does (SQLite's own mark is 1,000 pages)
WAL_BOUND_PAGES = 10_000
#: the page size of a new SQLite database (SQLite's default is 4 KiB; an existing file keeps
#: its own). A pushed visit's random-keyed index entries (its id, op id, household and time)
#: each dirty a page, and a commit writes every dirty page to the WAL with two system calls:
#: fewer, larger pages took a push of 500 from 42 to 39 ms at 20,000 visits, and were no
#: slower at 300,000; 16 KiB pages were 8 % slower there (bench/README.md). PostgreSQL's are 8 KiB.
SQLITE_PAGE_SIZE = 8192
#: how often a writer of another process looks whether the file lock is free
GATE_POLL_S = 0.0005


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(url: str) -> dict[str, Any]:
    """``hide_parameters``: a failed statement's values (ID numbers, phone numbers) stay out
    of its error message, and so out of the log."""
    if url.startswith("sqlite"):
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    return {"pool_size": 10, "max_overflow": 10, "hide_parameters": True}


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        _ping_when_idle(engine)
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before the first write
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 32 MB of page cache per connection instead of 2 MB: a county's reports probe a few
        # hundred thousand index pages, and the sorts of a GROUP BY stay in memory
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.execute("PRAGMA temp_store=MEMORY")
        if _file_of(engine) in _CHECKPOINTED:  # a thread of this process copies the WAL back
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_BOUND_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def checkpoint_in_background(engine: Engine) -> None:
    """In a server's worker: a thread copies the SQLite WAL back into the database file every
    CHECKPOINT_EVERY_S, and a commit does only past WAL_BOUND_PAGES. By default the commit
    that crossed SQLite's 1,000-page mark made that copy, and its fsync, itself — inside the
    write lock, about 6 % of a push's time (bench/README.md). SQLite's C code runs without the
    GIL, so the copy takes the other core. One thread per process serves all its counties'
    files. Nothing for PostgreSQL or a database in memory; other processes (the command line)
    keep SQLite's own checkpoints."""
    global _CHECKPOINTER
    path = _file_of(engine)
    if path is None or path in _CHECKPOINTED:
        return
    _CHECKPOINTED.add(path)
    engine.dispose(close=False)  # connections opened from now on leave checkpoints to us
    if _CHECKPOINTER is None:
        _CHECKPOINTER = threading.Thread(target=_checkpoints, name="wal-checkpoint", daemon=True)
        _CHECKPOINTER.start()


def _checkpoints() -> None:
    connections: dict[str, sqlite3.Connection] = {}
    while True:
        time.sleep(CHECKPOINT_EVERY_S)
        for path in sorted(_CHECKPOINTED):
            try:
                if path not in connections:
                    connections[path] = sqlite3.connect(path, timeout=0, check_same_thread=False)
                # PASSIVE: as much as readers and writers allow, waiting for neither
                connections[path].execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # a full disk: logged, and tried again next time
                log.warning("checkpoint of %s failed: %s", os.path.basename(path), error)


def _file_of(engine: Engine) -> str | None:
    """The absolute path of an SQLite database's file; None in memory or on PostgreSQL."""
    if engine.dialect.name != "sqlite" or _in_memory(engine):
        return None
    return os.path.abspath(engine.url.database or "")


def _in_memory(engine: Engine) -> bool:
    database = engine.url.database
    return not database or database == ":memory:" or "mode=memory" in str(engine.url)


def _ping_when_idle(engine: Engine) -> None:
    """A pooled connection that sat idle for PING_IDLE_S is pinged before it is used, and a
    dead one is replaced (PostgreSQL restarted, a firewall dropped it). SQLAlchemy's
    ``pool_pre_ping`` pinged at every checkout: a round trip on each of a request's
    connections, a fifth of a push's time in the evening storm (bench/README.md). A connection
    that dies while busy fails its request with a 503 once, and SQLAlchemy then replaces every
    connection of the pool that is older."""

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the driver's error for a dead connection
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("the connection did not answer a ping")


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed when the block ends (``BEGIN IMMEDIATE`` on SQLite)."""
    with _gate(engine), engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def one_push_at_a_time(engine: Engine) -> Any:
    """On SQLite, one push at a time in this process, from parsing its ops to its commit. A
    push is CPU work and SQLite writes one at a time anyway: a second push parsed by another
    thread of the same worker only took the GIL from the one holding the write lock, and so
    held every other worker's push up. With one push per worker, one worker parses while
    another writes (bench/README.md: 8 phones at once). On PostgreSQL a push waits on the
    network between its statements, and the worker's other threads use that time."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _gate_of(engine).pushing


class _WriteGate:
    """One writer at a time for one SQLite database: a thread lock for this process, then an
    exclusive ``flock`` of ``<database>-gate`` for the others (none for a database in memory).
    A forked process starts with no gates: a lock taken through a descriptor inherited across
    gunicorn's fork would be shared with the other workers, not exclude them."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.pushing = threading.Lock()
        self.fd: int | None = None  # the gate file, once opened; -1 when there is none

    @contextmanager
    def held(self) -> Iterator[None]:
        deadline = time.monotonic() + GATE_TIMEOUT_S
        if not self.lock.acquire(timeout=GATE_TIMEOUT_S):
            raise _locked()
        try:
            fd = self._file()
            while fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _locked() from None
                    time.sleep(GATE_POLL_S)
            try:
                yield
            finally:
                if fd >= 0:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()

    def _file(self) -> int:
        """The gate file, opened read-only: ``flock`` needs no more, so a file another user
        created (a command run as root) still serves. -1 for a database in memory, or if the
        file cannot be had: writers of other processes are then left to SQLite's busy handler,
        as before the gate: slower, never wrong."""
        if self.fd is None:
            self.fd = -1
            if self.path is not None:
                try:
                    flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC
                    self.fd = os.open(self.path, flags, 0o644)
                except OSError as error:
                    log.warning("no write gate for %s: %s", os.path.basename(self.path), error)
        return self.fd


_GATES: dict[str, _WriteGate] = {}
_GATES_LOCK = threading.Lock()


#: SQLite files whose WAL a thread of this process checkpoints (checkpoint_in_background)
_CHECKPOINTED: set[str] = set()
_CHECKPOINTER: threading.Thread | None = None


def _after_fork() -> None:
    """A forked process has none of its parent's threads, and no gate of its own yet."""
    global _GATES_LOCK, _CHECKPOINTER
    _GATES.clear()
    _GATES_LOCK = threading.Lock()  # a thread of the parent may have held it at the fork
    _CHECKPOINTED.clear()
    _CHECKPOINTER = None


os.register_at_fork(after_in_child=_after_fork)


def _gate(engine: Engine) -> Any:
    """On PostgreSQL no gate: its writers wait on row locks, which wake them."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _gate_of(engine).held()


def _gate_of(engine: Engine) -> _WriteGate:
    """The gate of ``engine``'s SQLite file: one per file, whichever engine opens it."""
    path = _file_of(engine)
    key = path or f"memory:{id(engine)}"
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = _WriteGate(path and path + "-gate")
    return gate


def _locked() -> OperationalError:
    """What SQLite's busy timeout raises, so the same 503 answers it (server/http/errors.py)."""
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
