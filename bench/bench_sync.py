"""Sync throughput of a real ``zoufang serve``, next to the raw SQLite insert rate of the same run.

    .venv/bin/python bench/bench_sync.py --quick                   # smoke run, prints only
    .venv/bin/python bench/bench_sync.py --big 1000000              # full run, appends to README

Absolute figures drift 20-30 % from run to run on a shared machine, so every figure is also
given as a ratio to the raw SQLite rate measured in the same run (the method of the peer
anchors in the project's PEERS.md notes). What each step measures and how to read the
tables: bench/README.md. Every request goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.pgserver: tests/ is not an installed package

README = ROOT / "bench" / "README.md"
RESULTS = ROOT / "bench" / "results"  # git-ignored: the raw figures of each run as JSON
RUNS_HEADING = "## Runs (appended by bench_sync.py, newest last)"

BATCH = 500  # ops per push request and rows per raw SQLite transaction
PULL_LIMIT = 1000
LOAD_CHUNK = 5000  # visits per transaction of the large-store bulk load
SECRET_KEY = "bench-secret-key-not-for-production"
PASSWORD_FALLBACK = "zoufang2026"
CHINA = timezone(timedelta(hours=8))
SCENARIO_BUDGET_S = 900.0  # no push or pull scenario runs longer than this
LOAD_BUDGET_S = 3600.0
RAW_REPEATS = 3  # raw 1-writer runs before and again after the servers; the median is the reference

TARGET_PUSH_RATIO = 0.30  # issue 3: push >= 30 % of the raw SQLite rate of the same run
TARGET_EMPTY_PULL_MS = 5.0  # issue 3: empty pull <= 5 ms median at 1 M stored visits

#: weekly_visit version 1, its boolean answers (forms/definitions/weekly_visit.json)
ANSWER_KEYS = (
    "health_asked",
    "knowledge_shared",
    "difficulty_solved",
    "comfort_given",
    "hygiene_improved",
    "plan_updated",
    "food_ok",
    "clothing_ok",
    "education_ok",
    "medical_ok",
    "housing_ok",
    "water_ok",
)
NOTES = (
    "老人身体尚可，已叮嘱按时服药",
    "已宣传防诈骗知识",
    "家中取暖设施正常",
    "孩子在校表现良好",
    "帮助联系村医上门",
    "厨房卫生已改善",
    "儿子春节回家",
    "已核实低保到账",
    None,
    None,
    None,
)

#: ratios to raw SQLite (1 process) of the peer systems in PEERS.md, measured 2026-11-25
PEER_ANCHORS = (
    ("raw SQLite, 8 writer processes", None, 0.738, 0.01),
    ("SQLAlchemy 2 ORM add_all on SQLite, in-process", 0.293, None, None),
    ("JSON + marshmallow load per visit, CPU only", 0.487, None, None),
    ("raw PostgreSQL, psycopg3 executemany", 0.812, 0.769, 0.18),
    ("pouchdb-server 4.2.0 (leveldb), _bulk_docs 500", 0.216, 0.204, 1.36),
    ("pouchdb-server 4.2.0 (memory), _bulk_docs 500", 0.273, 0.261, 1.19),
    ("Kinto 26.5.0 (postgresql), /v1/batch of 25", 0.00367, 0.00196, 10.62),
    ("Kinto 26.5.0 (memory), /v1/batch of 25", 0.0068, 0.00627, 75.06),
)


# --- visits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Household:
    id: str
    village_id: str | None
    people: tuple[str, ...]


def visit_data(rng: random.Random, household: Household, visited_at: datetime) -> dict[str, Any]:
    """What a phone sends for one weekly visit: the form's 12 checks, who was seen, where, notes."""
    home = rng.random() < 0.8
    seen = [p for p in household.people if rng.random() < 0.5][:2]
    location = None
    if home:
        location = {
            "lat": round(rng.uniform(29.5, 30.5), 6),
            "lon": round(rng.uniform(118, 119), 6),
            "accuracy": round(rng.uniform(5, 40), 1),
        }
    return {
        "household_id": household.id,
        "visited_at": visited_at.astimezone(CHINA).isoformat(timespec="seconds"),
        "mode": "home" if home else "phone",
        "form_id": "weekly_visit",
        "form_version": 1,
        "answers": {key: key.endswith("_ok") or rng.random() < 0.7 for key in ANSWER_KEYS},
        "people_seen": seen,
        "location": location,
        "notes": rng.choice(NOTES),
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def synthetic_households(rng: random.Random, count: int = 240) -> list[Household]:
    """Households for the raw anchor, shaped like the demo county's (uuids, one to three people)."""
    return [
        Household(
            str(uuid.uuid4()), None, tuple(str(uuid.uuid4()) for _ in range(rng.randint(1, 3)))
        )
        for _ in range(count)
    ]


# --- the raw SQLite anchor ------------------------------------------------------------------

RAW_SCHEMA = (
    "CREATE TABLE visits (id TEXT PRIMARY KEY, household_id TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX ix_visits_household ON visits (household_id)",
)


def raw_rows(seed: int, count: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    households = synthetic_households(rng)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        household = households[i % len(households)]
        data = visit_data(rng, household, now - timedelta(minutes=rng.randint(0, 600)))
        rows.append((str(uuid.uuid4()), household.id, dumps(data)))
    return rows


def raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def raw_insert(conn: sqlite3.Connection, rows: list[tuple[str, str, str]]) -> None:
    for start in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO visits VALUES (?, ?, ?)", rows[start : start + BATCH])
        conn.execute("COMMIT")


def raw_writer(path: str, seed: int, count: int, barrier: Any, done: Any) -> None:
    """One writer process: its rows are made before the start line, then inserted."""
    rows = raw_rows(seed, count)
    conn = raw_connect(Path(path))
    barrier.wait(timeout=120)
    raw_insert(conn, rows)
    conn.close()
    done.put(len(rows))


def raw_table(path: Path) -> None:
    path.unlink(missing_ok=True)
    conn = raw_connect(path)
    for statement in RAW_SCHEMA:
        conn.execute(statement)
    conn.close()


def raw_sqlite_one(workdir: Path, rows: list[tuple[str, str, str]]) -> tuple[float, float]:
    """(rows/s, CPU µs/row) of one process inserting ``rows`` into a fresh file."""
    path = workdir / "raw-1.db"
    raw_table(path)
    conn = raw_connect(path)
    cpu, start = time.process_time(), time.perf_counter()
    raw_insert(conn, rows)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return len(rows) / elapsed, cpu / len(rows) * 1e6


def raw_sqlite_many(workdir: Path, visits: int, writers: int, seed: int) -> float:
    """Rows/s of ``writers`` processes inserting ``visits`` rows in all into a fresh file."""
    path = workdir / f"raw-{writers}.db"
    raw_table(path)
    ctx = multiprocessing.get_context("spawn")
    barrier, done = ctx.Barrier(writers + 1), ctx.Queue()
    shares = [visits // writers + (1 if i < visits % writers else 0) for i in range(writers)]
    procs = [
        ctx.Process(target=raw_writer, args=(str(path), seed + i, n, barrier, done))
        for i, n in enumerate(shares)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    inserted = sum(done.get(timeout=SCENARIO_BUDGET_S) for _ in procs)
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join(timeout=30)
    return inserted / elapsed


def schema_floor(workdir: Path, rows: list[tuple[str, str, str]]) -> float:
    """Visits/s of ``executemany`` straight into Zoufang's own SQLite tables, 500 per
    transaction as a push writes them — the visit row with its typed columns and every index,
    and its ops-log row — with no server at all: the most a push can reach on this schema."""
    path = workdir / "schema.db"
    zoufang(f"sqlite:///{path}", "db", "upgrade")
    received = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    visits, ops = [], []
    for seq, (id_, household, data) in enumerate(rows, start=1):
        visited = datetime.fromisoformat(json.loads(data)["visited_at"]).astimezone(UTC)
        visits.append(
            (id_, seq, 0, None, household, data, "cadre", "device",
             visited.strftime("%Y-%m-%d %H:%M:%S.%f"), received, 0, None, None)
        )  # fmt: skip
        hlc = f"{seq:015d}-0000"
        ops.append(
            ("device", seq, str(uuid.uuid4()), "cadre", uuid.uuid4().hex * 2, "visit", "create",
             id_, hlc, hlc, None, "", "applied", seq, None, received)
        )  # fmt: skip
    conn = raw_connect(path)
    start = time.perf_counter()
    for first in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO visits (id, version, deleted, village_id, household_id, data, "
            "visitor_id, device_id, visited_at_effective, received_at, voided, voided_at, "
            "corrects) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            visits[first : first + BATCH],
        )
        conn.executemany(
            "INSERT INTO ops (device_id, device_seq, op_id, user_id, fingerprint, type, action, "
            "record_id, hlc, effective_hlc, base_version, payload, status, version, error, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ops[first : first + BATCH],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


def raw_empty_pull_ms(workdir: Path, repeats: int) -> float:
    """The floor of an empty pull: ``rowid > head`` on the 1-writer table, plus json.dumps."""
    conn = raw_connect(workdir / "raw-1.db")
    head = conn.execute("SELECT max(rowid) FROM visits").fetchone()[0] or 0
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT id, data FROM visits WHERE rowid > ? ORDER BY rowid LIMIT ?", (head, PULL_LIMIT)
        ).fetchall()
        json.dumps(
            {
                "records": [{"id": i, "data": json.loads(d)} for i, d in rows],
                "cursor": head,
                "more": False,
            }
        )
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    return statistics.median(times)


# --- databases ------------------------------------------------------------------------------


def zoufang_command() -> list[str]:
    script = Path(sys.executable).with_name("zoufang")
    if script.exists():
        return [str(script)]
    found = shutil.which("zoufang")
    if found:
        return [found]
    return [sys.executable, "-c", "from server.cli import main; main()"]


def zoufang_env(url: str) -> dict[str, str]:
    return {**os.environ, "ZOUFANG_DATABASE_URL": url, "ZOUFANG_SECRET_KEY": SECRET_KEY}


def zoufang(url: str, *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [*zoufang_command(), *args],
        env=zoufang_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"zoufang {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


class SqliteBackend:
    """A seeded template file, copied for each scenario: each starts from the same state."""

    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.folder = workdir / "sqlite"
        self.folder.mkdir()

    def template_url(self) -> str:
        return f"sqlite:///{self.folder / 'template.db'}"

    def fresh(self, label: str) -> str:
        path = self.folder / f"{label}.db"
        shutil.copy(self.folder / "template.db", path)
        return f"sqlite:///{path}"

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def pid(self) -> int | None:
        return None  # in-process: its CPU is the server's

    def close(self) -> None:
        pass


class PostgresBackend:
    """A throwaway cluster (tests/pgserver.py) and one database per scenario, from a template."""

    name = "postgres"

    def __init__(self, workdir: Path) -> None:
        from tests import pgserver

        self.server = pgserver.start()
        self.base = self.server.url.rsplit("/", 1)[0]

    def _admin(self, statement: str) -> Any:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.server.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def template_url(self) -> str:
        self._admin("CREATE DATABASE bench_template")
        return f"{self.base}/bench_template"

    def fresh(self, label: str) -> str:
        self._admin(f"CREATE DATABASE bench_{label} TEMPLATE bench_template")
        return f"{self.base}/bench_{label}"

    def version(self) -> str:
        return "PostgreSQL " + str(self._admin("SHOW server_version"))

    def pid(self) -> int | None:
        """The postmaster: its backends do the SQL work of every request."""
        return int((Path(self.server.data_dir) / "postmaster.pid").read_text().split()[0])

    def close(self) -> None:
        self.server.stop()


# --- the server and its HTTP API ------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    wire_bytes: int  # the response body as it came over the socket
    encoding: str


class Http:
    """One keep-alive connection to the server, as one phone holds it."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(
        self, method: str, path: str, body: bytes | None = None, token: str | None = None
    ) -> Reply:
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next call opens a fresh connection
            if method != "GET":
                raise  # a push is not resent: its outcome is what we measure
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        encoding = response.getheader("Content-Encoding") or "identity"
        payload = gzip.decompress(raw) if encoding == "gzip" else raw
        return Reply(response.status, json.loads(payload) if payload else None, len(raw), encoding)

    def close(self) -> None:
        self.conn.close()


def process_stats() -> dict[int, list[str]]:
    """Every live process → the fields of its /proc/<pid>/stat after the command name."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rindex(")") + 2 :].split()
    return stats


def descendants(roots: list[int], stats: dict[int, list[str]] | None = None) -> list[int]:
    """These processes and every live process below them."""
    stats = process_stats() if stats is None else stats
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    out, stack, seen = [], list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def process_tree_cpu(roots: list[int]) -> float:
    """CPU seconds used so far by these processes, their descendants and their reaped children.

    On a shared 2-core machine throughput moves with the neighbours' load; CPU seconds per
    visit do much less, so they say better where a change helped.
    """
    stats = process_stats()
    fields = [stats[pid] for pid in descendants(roots, stats)]
    ticks = sum(int(v) for f in fields for v in f[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    port: int
    pids: list[int]  # gunicorn's master, and the database server's when it has one

    def cpu(self) -> float:
        return process_tree_cpu(self.pids)


@contextmanager
def serve(
    url: str, log_path: Path, workers: int = 2, threads: int = 4
) -> Iterator[tuple[int, int]]:
    """``zoufang serve`` on a free port of 127.0.0.1, healthy, as (port, gunicorn's pid); stopped
    on the way out whatever happens. Its output goes to ``log_path``."""
    from tests.pgserver import free_port

    port = free_port()
    command = [
        *zoufang_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--no-scheduler",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=zoufang_env(url), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"zoufang serve did not come up:\n{tail}")
                try:
                    probe = Http(port)
                    healthy = probe.call("GET", "/healthz").status == 200
                    probe.close()
                    if healthy:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            yield port, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)  # gunicorn: quick shutdown of master and workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@contextmanager
def serving(url: str, logdir: Path, label: str, db_pid: int | None = None) -> Iterator[Server]:
    """``zoufang serve`` (gunicorn, 2 workers x 4 threads) for one scenario."""
    with serve(url, logdir / f"serve-{label}.log") as (port, pid):
        yield Server(port, [pid] + ([db_pid] if db_pid else []))


@dataclass
class Device:
    http: Http
    device_id: str
    token: str
    username: str
    next_seq: int = 1


def register(port: int, user: dict[str, Any], label: str) -> Device:
    http_ = Http(port)
    body = dumps({"username": user["username"], "password": user["password"], "label": label})
    reply = http_.call("POST", "/api/v1/devices", body.encode())
    if reply.status != 201:
        raise RuntimeError(f"registering {user['username']}: {reply.status} {reply.body}")
    return Device(http_, reply.body["device_id"], reply.body["token"], user["username"])


@dataclass
class PullRun:
    records: list[dict[str, Any]]
    pages: int
    wire_bytes: int
    seconds: float
    cursor: str | None
    encodings: set[str]
    complete: bool


def pull_all(device: Device, budget_s: float = SCENARIO_BUDGET_S, keep: bool = True) -> PullRun:
    """Page with limit=1000 from no cursor until ``more`` is false (or the time budget ends)."""
    cursor, pages, wire, records, encodings = None, 0, 0, [], set()
    more = True
    start = time.perf_counter()
    while more and time.perf_counter() - start < budget_s and pages < 100_000:
        query = {"limit": PULL_LIMIT, **({"cursor": cursor} if cursor else {})}
        reply = device.http.call("GET", "/api/v1/sync/pull?" + urlencode(query), token=device.token)
        if reply.status != 200:
            raise RuntimeError(f"pull by {device.username}: {reply.status} {reply.body}")
        pages, wire = pages + 1, wire + reply.wire_bytes
        encodings.add(reply.encoding)
        page = reply.body["records"]
        records.extend(page if keep else [None] * len(page))
        cursor, more = reply.body["cursor"], reply.body["more"]
    return PullRun(records, pages, wire, time.perf_counter() - start, cursor, encodings, not more)


def households_of(records: list[dict[str, Any]]) -> list[Household]:
    people: dict[str, list[str]] = {}
    for r in records:
        if r["type"] == "person" and not r["deleted"]:
            people.setdefault(r["data"]["household_id"], []).append(r["id"])
    return [
        Household(r["id"], r["data"]["village_id"], tuple(people.get(r["id"], ())))
        for r in records
        if r["type"] == "household" and not r["deleted"] and r["data"].get("status") != "archived"
    ]


def push_bodies(
    device: Device, households: list[Household], count: int, rng: random.Random
) -> list[tuple[int, bytes]]:
    """The device's outbox of ``count`` new visits, cut into push requests of 500 ops."""
    now = datetime.now(UTC)
    millis = int(now.timestamp() * 1000)
    ops = []
    for i in range(count):
        household = households[i % len(households)]
        data = visit_data(rng, household, now - timedelta(minutes=rng.randint(1, 600)))
        ops.append(
            {
                "op_id": str(uuid.uuid4()),
                "device_seq": device.next_seq + i,
                "hlc": f"{millis + i // 0x10000:015d}-{i % 0x10000:04x}",
                "action": "create",
                "type": "visit",
                "id": str(uuid.uuid4()),
                "base_version": None,
                "data": data,
            }
        )
    device.next_seq += count
    device_time = now.astimezone(CHINA).isoformat(timespec="seconds")
    bodies = []
    for start in range(0, count, BATCH):
        batch = ops[start : start + BATCH]
        envelope = {
            "device_id": device.device_id,
            "device_time": device_time,
            "schema": 1,
            "ops": batch,
        }
        bodies.append((len(batch), dumps(envelope).encode()))
    return bodies


@dataclass
class PushRun:
    devices: int
    visits: int = 0  # ops sent
    applied: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    request_bytes: int = 0
    response_bytes: int = 0
    seconds: float = 0.0
    complete: bool = True
    server_cpu: float = 0.0  # seconds, gunicorn and the database server
    client_cpu: float = 0.0  # seconds, this process (the phones)

    @property
    def rate(self) -> float:
        return self.applied / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        return self.visits - self.applied


def push_all(server: Server, outboxes: list[tuple[Device, list[tuple[int, bytes]]]]) -> PushRun:
    """Each device in its own thread pushes its outbox, one request after the other."""
    run = PushRun(len(outboxes))
    lock = threading.Lock()
    start_line = threading.Barrier(len(outboxes) + 1, timeout=60)
    deadline = [0.0]

    def phone(device: Device, bodies: list[tuple[int, bytes]]) -> None:
        device.http.close()  # a fresh connection: the server drops keep-alives idle for 2 s
        start_line.wait()
        for count, body in bodies:
            if time.perf_counter() > deadline[0]:
                with lock:
                    run.complete = False
                return
            try:
                reply = device.http.call("POST", "/api/v1/sync/push", body, device.token)
            except (OSError, http.client.HTTPException) as exc:
                reply = Reply(0, {"error": repr(exc)}, 0, "")
            statuses = (
                Counter(r["status"] for r in reply.body["results"])
                if reply.status == 200
                else Counter({f"http_{reply.status}": count})
            )
            with lock:
                run.visits += count
                run.applied += statuses["applied"]
                run.statuses.update(statuses)
                run.request_bytes += len(body)
                run.response_bytes += reply.wire_bytes
                if reply.status != 200 and len(run.errors) < 5:
                    run.errors.append(f"{reply.status} {str(reply.body)[:300]}")
                elif statuses["applied"] != count and len(run.errors) < 5:
                    bad = [r for r in reply.body["results"] if r["status"] != "applied"][:2]
                    run.errors.append(json.dumps(bad, ensure_ascii=False)[:300])

    threads = [threading.Thread(target=phone, args=pair, daemon=True) for pair in outboxes]
    for thread in threads:
        thread.start()
    server_cpu, client_cpu = server.cpu(), time.process_time()
    start = time.perf_counter()
    deadline[0] = start + SCENARIO_BUDGET_S
    start_line.wait()
    for thread in threads:
        thread.join(timeout=SCENARIO_BUDGET_S + 180)
    run.seconds = time.perf_counter() - start
    run.server_cpu, run.client_cpu = server.cpu() - server_cpu, time.process_time() - client_cpu
    return run


def empty_pulls(device: Device, cursor: str, repeats: int) -> dict[str, float]:
    """Latency of pulls with the cursor at the head, as the phone sees it (HTTP included)."""
    times, not_empty = [], 0
    path = "/api/v1/sync/pull?" + urlencode({"cursor": cursor, "limit": PULL_LIMIT})
    budget_end = time.perf_counter() + SCENARIO_BUDGET_S
    for _ in range(repeats):
        if time.perf_counter() > budget_end:
            break
        start = time.perf_counter()
        reply = device.http.call("GET", path, token=device.token)
        times.append((time.perf_counter() - start) * 1000)
        if reply.status != 200 or reply.body["records"] or reply.body["more"]:
            not_empty += 1
    return latency(times) | {"not_empty": not_empty}


def latency(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "mean_ms": statistics.fmean(ordered),
        "max_ms": ordered[-1],
    }


# --- the large store ------------------------------------------------------------------------


def store_visits(txn: Any, records: list[Any], postgres: bool) -> None:
    """Visits written as push stores them, but fast: the store's own insert on SQLite, COPY of
    the very same ``record_row()`` rows on PostgreSQL."""
    from server.storage.store import TABLES, record_row

    if not postgres:
        txn.insert_records(records)
        return
    rows = [record_row(r) for r in records]
    columns = list(rows[0])
    cursor = txn.conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {TABLES['visit'].name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def bulk_load(url: str, count: int, seed: int) -> dict[str, Any]:
    """``count`` visits written straight into the database, as push would have stored them.

    The records are built like sync.engine's ``_create`` builds them (defaults, the fields the
    server adds, the household's scope keys) and get versions from the store's counter inside
    its write transaction; SQLite takes them through SqlStore's own insert, PostgreSQL through
    COPY of the very same rows (server.storage.store.record_row). The ops log is not filled: a pull
    never reads it.
    """
    from sqlalchemy import create_engine, text

    from server.storage.db import configure_engine, engine_options, normalize_url
    from server.storage.store import SqlStore
    from sync.records import RECORD_TYPES, with_defaults
    from sync.store import Record

    url = normalize_url(url)
    engine = create_engine(url, **engine_options(url))
    configure_engine(engine)
    store = SqlStore(engine)
    with engine.connect() as conn:
        people: dict[str, list[str]] = {}
        for person_id, household_id in conn.execute(text("SELECT id, household_id FROM people")):
            people.setdefault(household_id, []).append(person_id)
        households = [
            Household(h, v, tuple(people.get(h, ())))
            for h, v in conn.execute(text("SELECT id, village_id FROM households"))
        ]
        visitor = conn.execute(
            text("SELECT id FROM users WHERE role = 'cadre' ORDER BY username")
        ).scalar()
    rng, device_id = random.Random(seed), str(uuid.uuid4())
    oldest = datetime.now(UTC) - timedelta(days=730)
    loaded, start, last_note = 0, time.perf_counter(), time.perf_counter()
    while loaded < count and time.perf_counter() - start < LOAD_BUDGET_S:
        with store.write() as txn:
            records = []
            for i in range(loaded, min(count, loaded + LOAD_CHUNK)):
                household = households[i % len(households)]
                visited = oldest + timedelta(seconds=rng.randint(0, 730 * 86400))
                data = with_defaults(RECORD_TYPES["visit"], visit_data(rng, household, visited))
                data.update(
                    visitor_id=visitor,
                    device_id=device_id,
                    visited_at_effective=data["visited_at"],
                    received_at=(visited + timedelta(hours=2))
                    .astimezone(CHINA)
                    .isoformat(timespec="seconds"),
                    voided=False,
                    void_reason=None,
                    review=[],
                )
                records.append(
                    Record(
                        "visit",
                        str(uuid.uuid4()),
                        txn.allocate_version(),
                        False,
                        data,
                        household.village_id,
                        household.id,
                    )
                )
            store_visits(txn, records, store.postgres)
        loaded += len(records)
        if time.perf_counter() - last_note > 15:
            last_note = time.perf_counter()
            print(f"    loaded {loaded:,} of {count:,} visits ...", flush=True)
    seconds = time.perf_counter() - start
    if store.postgres:  # what autovacuum does within a minute of such a load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM visits")).scalar()
    engine.dispose()
    return {
        "loaded": loaded,
        "stored_visits": stored,
        "seconds": seconds,
        "rate": loaded / seconds if seconds else 0.0,
        "complete": loaded == count,
    }


# --- one backend, every scenario ------------------------------------------------------------


def seed(backend: Any) -> list[dict[str, Any]]:
    url = backend.template_url()
    zoufang(url, "db", "upgrade")
    out = zoufang(url, "seed-demo", "--households", "240", "--weeks", "0", "--json")
    summary = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    for user in summary["users"]:
        user.setdefault("password", PASSWORD_FALLBACK)
    return summary["users"]


def learn(device: Device) -> tuple[list[Household], str]:
    """The device's first pull: the households it may visit, and its cursor at the head."""
    pulled = pull_all(device)
    households = households_of(pulled.records)
    if not households:
        raise RuntimeError(f"{device.username} has no household in scope")
    return households, pulled.cursor or ""


def bench_backend(backend: Any, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    print(f"[{backend.name}] seeding the demo county (240 households) ...", flush=True)
    users = seed(backend)
    cadres = sorted((u for u in users if u["role"] == "cadre"), key=lambda u: u["username"])
    village_cadre = next(u for u in cadres if u["region_ids"])
    supervisor = next(u for u in users if u["username"] == "county")
    out: dict[str, Any] = {"version": backend.version()}

    print(f"[{backend.name}] push, 1 device, {args.visits:,} visits ...", flush=True)
    with serving(backend.fresh("push1"), workdir, f"{backend.name}-push1", backend.pid()) as server:
        device = register(server.port, village_cadre, "bench 1")
        households, _ = learn(device)
        outbox = push_bodies(device, households, args.visits, rng)
        out["push1"] = push_all(server, [(device, outbox)])
        device.http.close()

    devices_n = 8
    print(f"[{backend.name}] push, {devices_n} devices, {args.visits:,} visits ...", flush=True)
    with serving(backend.fresh("push8"), workdir, f"{backend.name}-push8", backend.pid()) as server:
        outboxes = []
        shares = [
            args.visits // devices_n + (1 if i < args.visits % devices_n else 0)
            for i in range(devices_n)
        ]
        for i, share in enumerate(shares):
            device = register(server.port, cadres[i % len(cadres)], f"bench 8/{i}")
            households, _ = learn(device)
            outboxes.append((device, push_bodies(device, households, share, rng)))
        out["cadres8"] = [d.username for d, _ in outboxes]
        out["push8"] = push_all(server, outboxes)
        for device, _ in outboxes:
            device.http.close()

        print(f"[{backend.name}] full pulls and empty pulls after the pushes ...", flush=True)
        for key, user in (("pull_cadre", village_cadre), ("pull_supervisor", supervisor)):
            device = register(server.port, user, "bench pull")
            pulled = pull_all(device, keep=False)
            out[key] = pulled
            if key == "pull_cadre":
                out["empty_small"] = empty_pulls(device, pulled.cursor or "", args.empty_pulls)
            device.http.close()

    if args.big:
        print(f"[{backend.name}] bulk-loading {args.big:,} visits ...", flush=True)
        url = backend.fresh("big")
        out["load"] = bulk_load(url, args.big, args.seed)
        print(
            f"[{backend.name}] full pull and empty pulls at {out['load']['stored_visits']:,} "
            "stored visits ...",
            flush=True,
        )
        with serving(url, workdir, f"{backend.name}-big", backend.pid()) as server:
            device = register(server.port, village_cadre, "bench big")
            pulled = pull_all(device, keep=False)
            out["pull_big"] = pulled
            out["empty_big"] = empty_pulls(device, pulled.cursor or "", args.empty_pulls)
            device.http.close()
    return out


# --- the report -----------------------------------------------------------------------------


def source_version() -> str:
    """The commit measured, and whether the work tree differed from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return {
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
        "source": source_version(),
    }


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 0.01 else f"{value:.3f}"


def cpu_us(seconds: float, run: PushRun) -> str:
    return f"{seconds / run.applied * 1e6:.0f}" if run.applied else "-"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def report(
    args: argparse.Namespace, raw: dict[str, Any], results: dict[str, dict[str, Any]]
) -> str:
    base = raw["rate1"]
    runs = ", ".join(f"{r:,.0f}" for r in raw["rate1_runs"])
    lines = [
        "| system | push visits/s, 1 device | push visits/s, 8 devices "
        "| ratio to raw SQLite (1 / 8) | server CPU µs/visit (1 / 8) | empty-pull median ms "
        "| notes |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| raw SQLite (WAL, sync=NORMAL), executemany, 500/txn | {fmt_rate(base)} "
        f"| {fmt_rate(raw['rate8'])} | 1 / {fmt_ratio(raw['rate8'] / base)} "
        f"| {raw['cpu1_us']:.1f} / - | {raw['empty_ms']:.3f} | **the reference**, this run: "
        f"median of the 1-writer runs {runs} (before and after the servers); "
        f"{args.visits:,} rows; 8 = 8 writer processes, BEGIN IMMEDIATE |",
    ]
    lines.append(
        f"| Zoufang's own SQLite tables, executemany, 500/txn | {fmt_rate(raw['schema'])} | "
        f"| {fmt_ratio(raw['schema'] / base)} / - | | | **the schema's floor**: a visit row "
        f"(typed columns, every index) and its ops-log row per visit, no server |"
    )
    for name, r in results.items():
        p1, p8 = r["push1"], r["push8"]
        notes = [
            r["version"],
            f"failures 1/8: {p1.failures}/{p8.failures}",
            f"client CPU µs/visit {cpu_us(p1.client_cpu, p1)} / {cpu_us(p8.client_cpu, p8)}",
        ]
        if not (p1.complete and p8.complete):
            notes.append("partial: stopped at the time budget")
        if name == "postgres":
            notes.append("fsync=off cluster (tests/pgserver.py); server CPU includes PostgreSQL's")
        lines.append(
            f"| Zoufang {name}, HTTP push of 500 ops | {fmt_rate(p1.rate)} | {fmt_rate(p8.rate)} "
            f"| {fmt_ratio(p1.rate / base)} / {fmt_ratio(p8.rate / base)} "
            f"| {cpu_us(p1.server_cpu, p1)} / {cpu_us(p8.server_cpu, p8)} "
            f"| {r['empty_small']['median_ms']:.2f} | {'; '.join(notes)} |"
        )
    for label, r1, r8, empty in PEER_ANCHORS:
        lines.append(
            f"| *PEERS.md: {label}* | | | {fmt_ratio(r1)} / {fmt_ratio(r8)} | "
            f"| {'-' if empty is None else empty} | anchor, 2026-11-25 run |"
        )
    lines += [
        "",
        "| backend | full pull by | records | pages | MB on the wire | s | records/s "
        "| bytes/record |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        for key, who in (
            ("pull_cadre", "village cadre"),
            ("pull_supervisor", "county supervisor"),
            ("pull_big", "village cadre, large store"),
        ):
            if key not in r:
                continue
            p = r[key]
            n = len(p.records)
            partial = "" if p.complete else " (partial)"
            lines.append(
                f"| {name} | {who}{partial} | {n:,} | {p.pages} | {p.wire_bytes / 1e6:.2f} "
                f"| {p.seconds:.2f} | {fmt_rate(n / p.seconds if p.seconds else 0)} "
                f"| {p.wire_bytes / max(n, 1):.0f} |"
            )
    lines += [
        "",
        "| backend | push request bytes/visit | push response bytes/visit | encoding "
        "| empty pulls (n) | median ms | p95 ms | max ms |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        p1, e = r["push1"], r["empty_small"]
        encodings = ", ".join(sorted(r["pull_cadre"].encodings))
        lines.append(
            f"| {name} | {p1.request_bytes / max(p1.visits, 1):.0f} "
            f"| {p1.response_bytes / max(p1.visits, 1):.0f} | {encodings} | {e['n']} "
            f"| {e['median_ms']:.2f} | {e['p95_ms']:.2f} | {e['max_ms']:.2f} |"
        )
    big = {n: r for n, r in results.items() if "load" in r}
    if big:
        lines += [
            "",
            "| backend | stored visits | bulk load visits/s | cadre's first full pull: records, s "
            "| empty pulls (n) | median ms | p95 ms | target ≤ 5 ms median |",
            "|---|---:|---:|---|---:|---:|---:|---|",
        ]
        for name, r in big.items():
            load, p, e = r["load"], r["pull_big"], r["empty_big"]
            lines.append(
                f"| {name} | {load['stored_visits']:,} | {fmt_rate(load['rate'])} "
                f"| {len(p.records):,} in {p.seconds:.1f} s "
                f"({fmt_rate(len(p.records) / p.seconds if p.seconds else 0)}/s) "
                f"| {e['n']} | {e['median_ms']:.2f} | {e['p95_ms']:.2f} "
                f"| {verdict(e['median_ms'] <= TARGET_EMPTY_PULL_MS)} |"
            )
    lines += ["", "Targets (issue 3):", ""]
    for name, r in results.items():
        ratio1, ratio8 = r["push1"].rate / base, r["push8"].rate / base
        lines.append(
            f"- {name}: push ≥ 30 % of raw SQLite: 1 device {ratio1:.1%} "
            f"{verdict(ratio1 >= TARGET_PUSH_RATIO)}, 8 devices {ratio8:.1%} "
            f"{verdict(ratio8 >= TARGET_PUSH_RATIO)}"
            + (
                f"; empty pull at {r['load']['stored_visits']:,} visits: "
                f"{r['empty_big']['median_ms']:.2f} ms median "
                f"{verdict(r['empty_big']['median_ms'] <= TARGET_EMPTY_PULL_MS)}"
                if "load" in r
                else ""
            )
        )
    for name, r in results.items():
        for key in ("push1", "push8"):
            if r[key].errors:
                lines.append(f"- {name} {key} failures: {r[key].statuses}; e.g. {r[key].errors[0]}")
    return "\n".join(lines)


def header(
    args: argparse.Namespace,
    host: dict[str, str],
    versions: list[str],
    payload: dict[str, float],
    raw: dict[str, Any],
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"--backend {args.backend} --visits {args.visits}" + (
        f" --big {args.big}" if args.big else ""
    )
    return (
        f"### {stamp} — `bench_sync.py {command}`\n\n"
        f"Commit {host['source']}. "
        f"{host['arch']}, {host['cpu']}, {host['cores']} cores, {host['memory']}; "
        f"Python {host['python']}, {', '.join(versions)}; `zoufang serve` = gunicorn gthread, "
        f"2 workers × 4 threads, client on the same cores. Visit JSON {payload['mean']:.0f} bytes "
        f"on average ({payload['min']:.0f}-{payload['max']:.0f}), the same generator for the raw "
        "anchor and the pushes. Load average (1 min) "
        f"{raw['load_before']:.2f} at the start, {raw['load_after']:.2f} at the end."
    )


def append_to_readme(text: str, heading: str = RUNS_HEADING) -> None:
    """``text`` at the end of bench/README.md, under ``heading`` (added the first time): the
    section a bench appends its runs to, newest last."""
    existing = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    if heading not in existing:
        existing = existing.rstrip("\n") + "\n\n" + heading + "\n"
    README.write_text(existing.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n", encoding="utf-8")


def to_json(value: Any) -> Any:
    if isinstance(value, PushRun):
        return {**{k: v for k, v in vars(value).items()}, "rate": value.rate}
    if isinstance(value, PullRun):
        return {
            "records": len(value.records),
            "pages": value.pages,
            "wire_bytes": value.wire_bytes,
            "seconds": value.seconds,
            "encodings": sorted(value.encodings),
            "complete": value.complete,
        }
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def payload_sizes(seed: int) -> dict[str, float]:
    sizes = [len(row[2].encode()) for row in raw_rows(seed, 2000)]
    return {"mean": statistics.fmean(sizes), "min": min(sizes), "max": max(sizes)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--visits",
        type=int,
        default=20_000,
        help="visits pushed in each push scenario (default 20000)",
    )
    parser.add_argument(
        "--big",
        type=int,
        default=0,
        help="visits to bulk-load for the large-store pull test, e.g. 1000000",
    )
    parser.add_argument("--empty-pulls", type=int, default=200)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1000 visits, 5000 bulk-loaded, 20 empty pulls; prints only",
    )
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README alone")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if args.quick:
        args.visits, args.empty_pulls = 1000, 20
        args.big = args.big or 5000
        args.no_readme = True
    if not 8 <= args.visits <= 2_000_000 or not 0 <= args.big <= 20_000_000:
        parser.error("--visits must be 8..2000000 and --big 0..20000000")
    if not 1 <= args.empty_pulls <= 10_000:
        parser.error("--empty-pulls must be 1..10000")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    host = machine()
    names = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="zoufang-bench-") as tmp:
        workdir = Path(tmp)
        print(f"raw SQLite anchor: {args.visits:,} rows, 1 and 8 writer processes ...", flush=True)
        rows = raw_rows(args.seed, args.visits)
        ones = [raw_sqlite_one(workdir, rows) for _ in range(RAW_REPEATS)]
        raw: dict[str, Any] = {
            "rate8": raw_sqlite_many(workdir, args.visits, 8, args.seed),
            "schema": schema_floor(workdir, rows),
            "empty_ms": raw_empty_pull_ms(workdir, args.empty_pulls),
            "load_before": os.getloadavg()[0],
        }
        print(
            f"  {statistics.median(r for r, _ in ones):,.0f} rows/s (1 writer), "
            f"{raw['rate8']:,.0f} rows/s (8 writers)"
        )
        results: dict[str, dict[str, Any]] = {}
        versions = [f"SQLite {sqlite3.sqlite_version}"]
        for name in names:
            backend = (SqliteBackend if name == "sqlite" else PostgresBackend)(workdir)
            try:
                results[name] = bench_backend(backend, args, workdir)
                if name == "postgres":
                    versions.append(results[name]["version"])
            finally:
                backend.close()
        print("raw SQLite anchor again, 1 writer ...", flush=True)
        ones += [raw_sqlite_one(workdir, rows) for _ in range(RAW_REPEATS)]
    raw["load_after"] = os.getloadavg()[0]
    raw["rate1_runs"] = [r for r, _ in ones]
    raw["rate1"] = statistics.median(raw["rate1_runs"])
    raw["cpu1_us"] = statistics.median(c for _, c in ones)
    payload = payload_sizes(args.seed)
    text = header(args, host, versions, payload, raw) + "\n\n" + report(args, raw, results)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"sync-{stamp}.json").write_text(
        json.dumps(
            to_json({"args": vars(args), "host": host, "raw": raw, "results": results}),
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
    if not args.no_readme:
        append_to_readme(text)
        print(f"\nappended to {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
