"""The database handle and the engine settings that make SQLite a serious store.

SQLite: WAL so readers never wait for the writer, ``synchronous=NORMAL`` (durable across a
process crash, which is the failure a phone-facing server meets), a busy timeout instead of
instant "database is locked", and write transactions that start with ``BEGIN IMMEDIATE`` so
two pushes never deadlock upgrading a read lock.
"""

from __future__ import annotations

from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

WRITE_OPTION = "zoufang_write"


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
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "hide_parameters": True}


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 32 MB of page cache per connection instead of 2 MB: a county's reports probe a few
        # hundred thousand index pages, and the sorts of a GROUP BY stay in memory
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
