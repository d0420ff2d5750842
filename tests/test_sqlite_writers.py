"""SQLite's writers: the gate they queue at, and the WAL checkpoints of a server's worker
(server/storage/db.py)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from server.storage import db as storage_db
from server.storage.db import checkpoint_in_background, configure_engine, writing


@pytest.fixture()
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'z.db'}")
    configure_engine(engine)
    with writing(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    yield engine
    engine.dispose()


def test_a_writer_holds_the_gate_file_that_other_processes_queue_on(engine, tmp_path):
    other = os.open(tmp_path / "z.db-gate", os.O_RDWR)  # another process's own descriptor
    try:
        with writing(engine) as conn:
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('a')")
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again after the commit
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)


def test_a_writer_that_waits_too_long_for_the_gate_gets_database_is_locked(
    engine, tmp_path, monkeypatch
):
    monkeypatch.setattr(storage_db, "GATE_TIMEOUT_S", 0.2)
    other = os.open(tmp_path / "z.db-gate", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        with (
            pytest.raises(OperationalError, match="database is locked"),
            writing(engine) as conn,
        ):
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('a')")
    finally:
        os.close(other)
    with writing(engine) as conn:  # the gate is not left held by the writer that gave up
        conn.exec_driver_sql("INSERT INTO t (v) VALUES ('b')")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT v FROM t").scalars().all() == ["b"]


def test_a_servers_worker_copies_the_wal_back_in_a_thread_not_in_its_commits(
    engine, tmp_path, monkeypatch
):
    monkeypatch.setattr(storage_db, "CHECKPOINT_EVERY_S", 0.05)
    monkeypatch.setattr(storage_db, "_CHECKPOINTED", set())  # this test's file alone, and
    monkeypatch.setattr(storage_db, "_CHECKPOINTER", None)  # a thread started for it
    checkpoint_in_background(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
    database = tmp_path / "z.db"
    before = database.stat().st_size
    for _ in range(20):  # far beyond SQLite's 1,000-page mark for its own checkpoints
        with writing(engine) as conn:
            conn.exec_driver_sql(
                "INSERT INTO t (v) SELECT hex(randomblob(2000)) FROM"
                " (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
                " SELECT i FROM n)"
            )
    deadline = time.monotonic() + 10
    while database.stat().st_size < before + 4_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size >= before + 4_000_000  # the rows reached the database file
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2000


def test_a_gate_file_that_cannot_be_opened_leaves_writers_to_sqlite(tmp_path, caplog):
    (tmp_path / "y.db-gate").symlink_to(tmp_path / "no such folder" / "gate")
    engine = create_engine(f"sqlite:///{tmp_path / 'y.db'}")
    configure_engine(engine)
    try:
        with writing(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (v TEXT)")
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('stored')")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT v FROM t").scalars().all() == ["stored"]
        assert "no write gate for y.db-gate" in caplog.text
    finally:
        engine.dispose()


def test_the_wal_stays_bounded_when_the_thread_falls_behind(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(storage_db, "CHECKPOINT_EVERY_S", 3600)  # the thread never catches up
    monkeypatch.setattr(storage_db, "WAL_BOUND_PAGES", 200)
    monkeypatch.setattr(storage_db, "_CHECKPOINTED", set())
    monkeypatch.setattr(storage_db, "_CHECKPOINTER", None)
    checkpoint_in_background(engine)
    for _ in range(30):  # ~6 MB of rows, ~7 times the bound
        with writing(engine) as conn:
            conn.exec_driver_sql(
                "INSERT INTO t (v) SELECT hex(randomblob(1000)) FROM"
                " (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
                " SELECT i FROM n)"
            )
    wal = tmp_path / "z.db-wal"
    assert wal.stat().st_size < 4 * 200 * 4096


def test_a_new_database_has_8_kib_pages_and_an_old_one_keeps_its_own(engine, tmp_path):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 8192
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    old_file = tmp_path / "old.db"
    plain = sqlite3.connect(old_file)  # made by an earlier release, with SQLite's 4 KiB pages
    plain.execute("PRAGMA journal_mode=WAL")
    plain.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    plain.execute("INSERT INTO t (v) VALUES ('kept')")
    plain.commit()
    plain.close()
    old = create_engine(f"sqlite:///{old_file}")
    configure_engine(old)
    try:
        with writing(old) as conn:
            conn.exec_driver_sql("INSERT INTO t (v) VALUES ('new')")
        with old.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            assert conn.exec_driver_sql("SELECT v FROM t ORDER BY id").scalars().all() == [
                "kept",
                "new",
            ]
    finally:
        old.dispose()
