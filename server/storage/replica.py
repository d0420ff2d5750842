"""Where reports read: a streaming replica of the database when one is configured and fresh
enough, else the primary (docs/scale.md, "Reports on a replica").

``ZOUFANG_REPORTS_DATABASE_URL`` names a PostgreSQL hot standby (``pg_basebackup -R``). Every
report, export, dashboard query and the bulletin job's reading take their connection from
``report()`` here, and nowhere else decides where a report reads; pushes, pulls and every write
keep using the primary (``service.store()``). What a replica answers is the primary as it was
when the replica last replayed a commit, so a report's "now" is that moment (``known_at``), not
the clock: a supervisor sees how old the figures are. A replica that cannot be reached, or is
further behind than ``ZOUFANG_REPORTS_MAX_LAG_SECONDS``, is passed over for the primary, with
a warning in the log — a report is slower then, never wrong and never refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from server.storage.db import configure_engine, engine_options, normalize_url
from server.storage.store import sorts_in_memory
from server.timeutil import utcnow

log = logging.getLogger(__name__)

EXTENSION = "zoufang_reports"
DEFAULT_MAX_LAG_SECONDS = 300
#: the execution option a replica connection carries: the moment its data stands at
KNOWN_AT = "zoufang_known_at"
#: seconds a report waits for a replica that does not answer before it reads the primary
CONNECT_TIMEOUT = 3

#: One statement: whether this is a standby, the primary's time of the last commit it replayed,
#: whether it has replayed all it received while a WAL receiver runs (then it is current, even
#: when idle for hours and its last commit is old), and its clock.
REPLAY_STATE = text(
    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp(),"
    " pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
    " AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver),"
    " clock_timestamp()"
)


@dataclass(frozen=True)
class Freshness:
    """How far a replica is behind: ``known_at`` (naive UTC) is the moment its data stands at,
    None when it is current; ``lag`` in seconds."""

    known_at: datetime | None
    lag: float


def freshness(conn: Connection) -> Freshness:
    """The replica's replay state. A database that is not a standby (or not PostgreSQL) is
    current. A standby that has replayed nothing since it started is infinitely behind."""
    if conn.dialect.name != "postgresql":
        return Freshness(None, 0.0)
    standby, replayed_at, caught_up, clock = conn.execute(REPLAY_STATE).one()
    if not standby or caught_up:
        return Freshness(None, 0.0)
    if replayed_at is None:
        return Freshness(None, float("inf"))
    lag = max(0.0, (clock - replayed_at).total_seconds())
    return Freshness(replayed_at.astimezone(UTC).replace(tzinfo=None), lag)


class ReportDatabases:
    """The primary engine and, if configured, the replica's, with the lag bound."""

    def __init__(self, primary: Engine, replica: Engine | None, max_lag: float) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        conn = self._replica_connection() if self.replica is not None else None
        if conn is None:
            conn = self.primary.connect()
        with conn:
            sorts_in_memory(conn)
            yield conn

    def _replica_connection(self) -> Connection | None:
        """A connection to the replica when it answers and is within the bound, else None
        (and a warning: an operator should know reports have moved to the primary)."""
        assert self.replica is not None
        try:
            conn = self.replica.connect()
        except SQLAlchemyError as exc:
            log.warning("reports replica unreachable, reading the primary: %s", first_line(exc))
            return None
        try:
            state = freshness(conn)
            conn.rollback()  # the check's transaction is not the report's
        except SQLAlchemyError as exc:
            conn.close()
            log.warning("reports replica failed, reading the primary: %s", first_line(exc))
            return None
        if state.lag > self.max_lag:
            conn.close()
            log.warning(
                "reports replica %.0f s behind (bound %.0f s), reading the primary",
                state.lag,
                self.max_lag,
            )
            return None
        conn.execution_options(**{KNOWN_AT: state.known_at})
        return conn


def first_line(exc: Exception) -> str:
    """A database error's first line, for a log line (psycopg's run to several)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def init_app(app: Flask, primary: Engine) -> None:
    """Reports read ``REPORTS_DATABASE_URL`` when set; the primary otherwise."""
    url = app.config.get("REPORTS_DATABASE_URL")
    replica = report_engine(url) if url else None
    max_lag = float(app.config.get("REPORTS_MAX_LAG_SECONDS", DEFAULT_MAX_LAG_SECONDS))
    app.extensions[EXTENSION] = ReportDatabases(primary, replica, max_lag)


def report_engine(url: str) -> Engine:
    """An engine that reports read through, which gives up on a server that does not answer
    within CONNECT_TIMEOUT (a report then reads elsewhere, or lists what it could not read)."""
    url = normalize_url(url)
    options = engine_options(url)
    if url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    engine = create_engine(url, **options)
    configure_engine(engine)
    return engine


def databases() -> ReportDatabases:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


@contextmanager
def report() -> Iterator[Connection]:
    """The connection a report reads: the replica when fresh enough, else the primary."""
    with databases().connect() as conn:
        yield conn


def known_at(conn: Connection) -> datetime:
    """The moment (naive UTC) the data of a report connection stands at: the replica's last
    replayed commit when it is behind, now otherwise."""
    moment = conn.get_execution_options().get(KNOWN_AT)
    return moment if isinstance(moment, datetime) else utcnow()


def on_replica(conn: Connection) -> bool:
    """Whether a report connection reads the replica (so nothing may be written through it)."""
    return databases().replica is not None and conn.engine is databases().replica
