"""One phone pushing into a store that already holds many visits, with random or time-ordered ids.

    .venv/bin/python bench/bench_push_store.py                         # empty store, both kinds
    .venv/bin/python bench/bench_push_store.py --store 300000          # ~1 min to build, ~2 min
    .venv/bin/python bench/bench_push_store.py --store 300000 --page-size 4096 --ids v4

A pushed visit adds an entry to the indexes on the visit's id and on its op's id. With random
ids (version 4, what crypto.randomUUID gives) each entry lands on its own page of those
indexes, and the commit writes every page it touched to SQLite's WAL, so a push costs more as
the store grows; with time-ordered ids (version 7, sync/ids.py and pwa_static/js/ids.js, what
the PWA sends since 2026-12-04) a push's entries share a few pages at the end.

The demo county (``zoufang seed-demo --weeks 0``) in a fresh SQLite file, ``--store`` earlier
visits written into it directly (random ids, times over the past year, as a county's store
holds after a year of phones with random ids), then ``zoufang serve --workers 2 --threads 4``
and one cadre's phone pushing ``--pushes`` pushes of 500 visits (profile_push.py's visits) on
one keep-alive connection, each run on a fresh copy of the store. ``--page-size`` rebuilds
the store with that page size first (VACUUM). Everything goes to 127.0.0.1; the server is
stopped by PID, and each run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_counties import free_port  # noqa: E402
from profile_push import (  # noqa: E402
    ANSWER_KEYS,
    PASSWORD,
    bodies,
    households_and_people,
    prepare,
)

from sync.ids import new_id  # noqa: E402

SIZE = 500


def build_store(path: Path, visits: int, page_size: int | None) -> dict:
    """The seeded county at ``path`` with ``visits`` earlier visits; returns the seed."""
    seed = prepare(f"sqlite:///{path}", path.parent)
    conn = sqlite3.connect(path)
    households = conn.execute("SELECT id, village_id FROM households").fetchall()
    rng = random.Random(1)
    start = dt.datetime(2026, 12, 1)
    rows = []
    for i in range(visits):
        household, village = households[rng.randrange(len(households))]
        at = (start - dt.timedelta(seconds=rng.randrange(365 * 86400))).isoformat(
            " ", "microseconds"
        )
        data = {
            "household_id": household,
            "visited_at": at,
            "mode": "home",
            "form_id": "weekly_visit",
            "form_version": 1,
            "answers": {k: True for k in ANSWER_KEYS},
            "people_seen": [],
            "location": {"lat": 30.5, "lon": 104.7, "accuracy": 12},
            "notes": "老人身体状况良好，已提醒按时服药",
            "visited_at_effective": at,
            "received_at": at,
        }
        rows.append((str(uuid.uuid4()), str(uuid.uuid4()), household, village, at, 10**7 + i, data))
        if len(rows) == 5000 or i == visits - 1:
            _insert_old(conn, rows)
            rows = []
    if page_size:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(f"PRAGMA page_size={page_size}")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return seed


def _insert_old(conn: sqlite3.Connection, rows: list) -> None:
    conn.executemany(
        "INSERT INTO visits (id, version, deleted, village_id, household_id, data, visitor_id,"
        " device_id, visited_at_effective, received_at, voided, voided_at, corrects)"
        " VALUES (?, ?, 0, ?, ?, ?, 'old', 'old', ?, ?, 0, NULL, NULL)",
        [
            (v, n, village, h, json.dumps(d, ensure_ascii=False), at, at)
            for v, _, h, village, at, n, d in rows
        ],
    )
    conn.executemany(
        "INSERT INTO ops (device_id, device_seq, op_id, user_id, fingerprint, type, action,"
        " record_id, hlc, effective_hlc, base_version, payload, status, version, error,"
        " received_at) VALUES ('old', ?, ?, 'old', '', 'visit', 'create', ?,"
        " '001796362741520-0000', '001796362741520-0000', NULL, '', 'applied', ?, NULL, ?)",
        [(n, op, v, n, at) for v, op, _, _, at, n, _ in rows],
    )
    conn.commit()  # no audit_log rows: a synced change's audit is its op (migration 0013)


def call(conn: http.client.HTTPConnection, method: str, path: str, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = body if isinstance(body, bytes) or body is None else json.dumps(body)
    conn.request(method, path, body=data, headers=headers)
    answer = conn.getresponse()
    raw = answer.read()
    return answer.status, json.loads(raw) if raw else None


def run(store: Path, seed: dict, ids: str, pushes: int, timeout: float) -> float:
    """Visits per second of one phone's ``pushes`` pushes into a copy of ``store``."""
    work = Path(tempfile.mkdtemp(prefix="push-store-"))
    try:
        shutil.copy(store, work / "z.db")
        url = f"sqlite:///{work / 'z.db'}"
        env = {**os.environ, "ZOUFANG_DATABASE_URL": url, "ZOUFANG_SECRET_KEY": "bench"}
        port = free_port()
        command = [str(Path(sys.executable).parent / "zoufang"), "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "2", "--threads", "4", "--no-scheduler"]
        server = subprocess.Popen(
            command,
            env=env,
            cwd=work,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return _push(port, seed, ids, pushes, time.monotonic() + timeout)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _push(port: int, seed: dict, ids: str, pushes: int, deadline: float) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while True:
        try:
            call(conn, "GET", "/api/v1/openapi.json")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    cadre = next(u for u in seed["users"] if u["role"] == "cadre")
    status, device = call(
        conn,
        "POST",
        "/api/v1/devices",
        {"username": cadre["username"], "password": PASSWORD, "label": "bench"},
    )
    assert status == 201, device
    records, cursor = [], None
    while True:
        query = "/api/v1/sync/pull?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, page = call(conn, "GET", query, token=device["token"])
        records += page["records"]
        cursor = page["cursor"]
        if not page["more"]:
            break
    made = bodies(device, *households_and_people(records), pushes + 1, SIZE)
    if ids == "v7":  # the same visits, with the ids the PWA now makes
        made = [_time_ordered(body) for body in made]
    status, _ = call(conn, "POST", "/api/v1/sync/push", made[0], device["token"])  # warm-up
    assert status == 200
    started = time.perf_counter()
    for body in made[1:]:
        status, answer = call(conn, "POST", "/api/v1/sync/push", body, device["token"])
        assert status == 200 and {r["status"] for r in answer["results"]} == {"applied"}
        if time.monotonic() > deadline:
            raise TimeoutError("the pushes ran past --timeout")
    return pushes * SIZE / (time.perf_counter() - started)


def _time_ordered(body: bytes) -> bytes:
    envelope = json.loads(body)
    for op in envelope["ops"]:
        op["op_id"], op["id"] = new_id(), new_id()
    return json.dumps(envelope, ensure_ascii=False).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=int, default=0, help="earlier visits in the store")
    parser.add_argument("--ids", choices=("v4", "v7", "both"), default="both")
    parser.add_argument("--page-size", type=int, default=None, help="rebuild with this page size")
    parser.add_argument("--pushes", type=int, default=40, help="pushes of 500 per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind of id")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run at most")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="push-store-template-") as folder:
        store = Path(folder) / "z.db"
        built = time.monotonic()
        seed = build_store(store, args.store, args.page_size)
        page_size = sqlite3.connect(store).execute("PRAGMA page_size").fetchone()[0]
        print(
            f"store: {args.store:,} earlier visits, {page_size}-byte pages,"
            f" built in {time.monotonic() - built:.0f} s"
        )
        kinds = ("v4", "v7") if args.ids == "both" else (args.ids,)
        rates: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.runs):  # alternating, so drift of the machine hits both alike
            for kind in kinds:
                rates[kind].append(run(store, seed, kind, args.pushes, args.timeout))
        for kind, found in rates.items():
            runs = ", ".join(f"{r:,.0f}" for r in found)
            print(f"ids {kind}: median {statistics.median(found):,.0f} visits/s ({runs})")


if __name__ == "__main__":
    main()
