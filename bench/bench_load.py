"""The evening sync storm of a county: thousands of phones sync within a few minutes.

    .venv/bin/python bench/bench_load.py --devices 200 --window 60           # quick run, ~3 min
    .venv/bin/python bench/bench_load.py --backend sqlite --devices 3000 --window 600
    .venv/bin/python bench/bench_load.py --devices 3000 --window 600 --returning

A county is written straight into a fresh database (``--devices`` cadres, each with
``--households-per-cadre`` 包保 households and their people, and ``--history-weeks`` of
past visits). Then ``zoufang serve`` (gunicorn, ``--workers`` × ``--threads``) meets one
phone per cadre, each arriving at a uniformly random moment of the ``--window`` (the
arrival pattern of a Poisson process with that many arrivals). Each phone, on its own
keep-alive connection:

1. signs in, ``POST /api/v1/devices`` (a real Argon2id check of its password), unless
   ``--preregistered`` gives it a device token written into the database beforehand;
2. pulls its scope from no cursor until ``more`` is false (its households, their people,
   recent visits) and picks its households from what it got;
3. pushes a week of visits, ``--visits`` ops in one request;
4. pulls from its cursor until caught up, and checks that its own visits came back.

``--returning`` is the ordinary evening instead: phones that signed in and pulled on an
earlier day (steps 1-2 are done before the clock starts), so the storm is 3-4 alone.

A 429 or 503 answer is retried after a pause (Retry-After, capped, or an exponential
backoff with jitter) and counted apart; every other non-2xx answer, connection failure or
wrong op status is an error. At the end the database must hold exactly the visits pushed.
Every request goes to 127.0.0.1, and the storm stops by itself: phones not done by
``--timeout`` seconds after the start are cancelled and counted as unfinished.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from bench_reports import analyze, load_average, load_visits, make_app, region
from bench_sync import (
    CHINA,
    RESULTS,
    ROOT,
    PostgresBackend,
    SqliteBackend,
    descendants,
    dumps,
    households_of,
    machine,
    process_tree_cpu,
    serve,
    visit_data,
    zoufang,
)

PASSWORD = "storm-2026"
HOUSEHOLDS_PER_VILLAGE = 240
TOWNSHIPS = 15
WEEKLY_SHARE = 0.92  # as in bench_reports.py: the rest are monthly-policy households
PULL_LIMIT = 1000
KINDS = ("register", "pull_first", "push", "pull")
RETRIED = (429, 503)
MAX_ATTEMPTS = 8
RETRY_CAP_S = 30.0  # a login 429 says Retry-After: 900; a phone in a storm retries sooner
REQUEST_TIMEOUT_S = 120.0
SAMPLE_EVERY_S = 0.5


# --- the county -----------------------------------------------------------------------------


@dataclass
class County:
    households: int
    villages: int
    people: int
    cadres: list[tuple[str, str]]  # (user id, username), one phone each


def build_county(app: Any, cadres: int, per_cadre: int, history_weeks: int, seed: int) -> County:
    """Regions, households with one to three people, and cadres who each 包保 ``per_cadre``
    households of one village; every user has the password ``PASSWORD``, hashed with the
    server's own Argon2id parameters so a sign-in costs what it costs in production."""
    from sqlalchemy import insert

    from server import DEFAULTS
    from server.auth import hash_password
    from server.service import create_server_records, store
    from server.storage.models import Assignment, User

    rng = random.Random(seed)
    households = cadres * per_cadre
    villages_n = math.ceil(households / HOUSEHOLDS_PER_VILLAGE)
    county = str(uuid.uuid4())
    items = [region(county, None, "county", "青山县", "341823")]
    townships = [str(uuid.uuid4()) for _ in range(min(TOWNSHIPS, villages_n))]
    for t, township in enumerate(townships):
        items.append(region(township, county, "township", f"第{t + 1}镇", f"341823{t + 1:03d}"))
    villages = [str(uuid.uuid4()) for _ in range(villages_n)]
    for v, village in enumerate(villages):
        township = townships[v % len(townships)]
        items.append(region(village, township, "village", f"第{v + 1}村", f"3418231{v + 1:04d}"))
    homes: list[tuple[str, str, str]] = []  # (id, village, visit policy), for load_visits
    people = []
    for i in range(households):
        household, village = str(uuid.uuid4()), villages[i // HOUSEHOLDS_PER_VILLAGE]
        policy = "weekly" if rng.random() < WEEKLY_SHARE else "monthly"
        homes.append((household, village, policy))
        items.append(
            (
                "household",
                household,
                {
                    "village_id": village,
                    "code": f"H{i:07d}",
                    "head_name": f"户主{i}",
                    "address": f"{i % 12 + 1}组",
                    "phone": f"139{i:08d}",
                    "category": "脱贫户",
                    "status": "active",
                    "visit_policy": policy,
                    "lat": None,
                    "lon": None,
                    "notes": None,
                },
            )
        )
        for p in range(rng.randint(1, 3)):
            people.append(
                (
                    "person",
                    str(uuid.uuid4()),
                    {
                        "household_id": household,
                        "name": f"成员{i}-{p}",
                        "gender": rng.choice("男女"),
                        "birth_year": rng.randint(1935, 2015),
                        "relation": "户主" if p == 0 else "家人",
                        "flags": ["elderly"] if rng.random() < 0.3 else [],
                        "id_number": None,
                        "phone": None,
                        "notes": None,
                    },
                )
            )
    password = hash_password(PASSWORD, DEFAULTS["PASSWORD_HASH"])
    now = datetime.now(UTC).replace(tzinfo=None)
    users, assignments, phones = [], [], []
    for c in range(cadres):
        user, username = str(uuid.uuid4()), f"cadre{c:05d}"
        users.append(
            {
                "id": user,
                "username": username,
                "name": f"干部{c}",
                "role": "cadre",
                "password_hash": password,
                "active": True,
                "created_at": now,
            }
        )
        assignments += [
            {"user_id": user, "kind": "household", "target_id": h[0]}
            for h in homes[c * per_cadre : (c + 1) * per_cadre]
        ]
        phones.append((user, username))
    with app.app_context():
        create_server_records(items + people, actor=None)
        with store().engine.begin() as conn:
            conn.execute(insert(User), users)
            conn.execute(insert(Assignment), assignments)
    if history_weeks:
        load_visits(app, {"homes": homes, "visitors": [u for u, _ in phones]}, history_weeks, seed)
    analyze(app)
    return County(households, villages_n, len(people), phones)


def preregister(app: Any, cadres: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """A device and token per cadre, written as registration writes them, minus the sign-in."""
    from sqlalchemy import insert

    from server.auth import new_token, token_hash
    from server.service import store
    from server.storage.models import Device
    from server.timeutil import now as server_now
    from sync.effective import hlc_of

    hlc, at = hlc_of(server_now()), datetime.now(UTC).replace(tzinfo=None)
    tokens, rows = {}, []
    for user, username in cadres:
        device, token = str(uuid.uuid4()), new_token()
        tokens[username] = (device, token)
        rows.append(
            {
                "id": device,
                "user_id": user,
                "label": "storm",
                "created_at": at,
                "token_hash": token_hash(token),
                "last_seen_at": at,
                "next_seq": 1,
                "floor_hlc": hlc,
                "last_hlc": hlc,
            }
        )
    with app.app_context(), store().engine.begin() as conn:
        conn.execute(insert(Device), rows)
    return tokens


def argon2_ms() -> float:
    """CPU ms of one password check with the server's parameters, in this process."""
    from argon2 import PasswordHasher

    from server import DEFAULTS

    hasher = PasswordHasher(**DEFAULTS["PASSWORD_HASH"])
    stored = hasher.hash(PASSWORD)
    start = time.process_time()
    for _ in range(20):
        hasher.verify(stored, PASSWORD)
    return (time.process_time() - start) / 20 * 1000


# --- the server -----------------------------------------------------------------------------


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) of these processes, MiB. RSS counts the pages gunicorn's workers share with
    their master once per process; PSS splits them, so its sum is the memory really used."""
    totals = {"Rss:": 0, "Pss:": 0}
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(" ")
                if key in totals:
                    totals[key] += int(rest.split()[0])
    return totals["Rss:"] / 1024, totals["Pss:"] / 1024


@dataclass
class Server:
    port: int
    pid: int
    log: Path


@contextlib.contextmanager
def serving(url: str, logdir: Path, label: str, workers: int, threads: int) -> Iterator[Server]:
    """``zoufang serve`` on a free port of 127.0.0.1, stopped on the way out whatever happens."""
    path = logdir / f"serve-{label}.log"
    with serve(url, path, workers, threads) as (port, pid):
        yield Server(port, pid, path)


def access_statuses(log: Path) -> Counter[str]:
    """HTTP statuses of the API requests in gunicorn's access log."""
    pattern = re.compile(r'"[A-Z]+ (/api/\S*) HTTP/[\d.]+" (\d{3}) ')
    counts: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        match = pattern.search(line)
        if match:
            counts[match.group(2)] += 1
    return counts


# --- the phones -----------------------------------------------------------------------------


class SessionFailed(Exception):
    """A phone could not finish its sync; the reason is counted as an error."""


@dataclass
class Tally:
    """Everything the phones saw, shared by all of them (one event loop: no locks)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    finished_at: list[float] = field(default_factory=list)  # monotonic, each 2xx answer
    retried: Counter[str] = field(default_factory=Counter)  # "push 503" -> n
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    op_statuses: Counter[str] = field(default_factory=Counter)
    pushed_ids: set[str] = field(default_factory=set)
    not_pulled_back: int = 0
    first_pull_records: list[int] = field(default_factory=list)
    sessions_done: int = 0
    session_seconds: list[float] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        if len(self.examples) < 8:
            self.examples.append(f"{what}: {detail[:300]}")


def backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), RETRY_CAP_S) * random.uniform(0.5, 1.0)
    return min(0.5 * 2**attempt, RETRY_CAP_S) * random.uniform(0.5, 1.0)


async def request(
    http: aiohttp.ClientSession,
    tally: Tally,
    kind: str,
    method: str,
    path: str,
    token: str | None = None,
    body: bytes | None = None,
) -> tuple[int, Any]:
    """One API call; 429/503 and dropped connections are retried (pushes are idempotent by
    op_id, so a resent push is answered ``duplicate`` for what was stored)."""
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    for attempt in range(MAX_ATTEMPTS):
        start = time.perf_counter()
        try:
            async with http.request(method, path, data=body, headers=headers) as response:
                payload = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
                wire = int(response.headers.get("Content-Length") or len(payload))
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.error(f"{kind}: {type(exc).__name__}", repr(exc))
            await asyncio.sleep(backoff(attempt, None))
            continue
        elapsed_ms = (time.perf_counter() - start) * 1000
        tally.bytes_up += len(body or b"")
        tally.bytes_down += wire
        if status in RETRIED:
            tally.retried[f"{kind} {status}"] += 1
            await asyncio.sleep(backoff(attempt, retry_after))
            continue
        if status < 300:
            tally.latencies[kind].append(elapsed_ms)
            tally.finished_at.append(time.monotonic())
        return status, json.loads(payload) if payload else None
    raise SessionFailed(f"{kind}: no answer after {MAX_ATTEMPTS} attempts")


async def pull_until_caught_up(
    http: aiohttp.ClientSession, tally: Tally, kind: str, token: str, cursor: str | None
) -> tuple[list[dict[str, Any]], str]:
    records: list[dict[str, Any]] = []
    for _ in range(1000):
        query = f"?limit={PULL_LIMIT}" + (f"&cursor={cursor}" if cursor else "")
        status, body = await request(http, tally, kind, "GET", "/api/v1/sync/pull" + query, token)
        if status != 200:
            raise SessionFailed(f"{kind}: {status} {body}")
        records += body["records"]
        cursor = body["cursor"]
        if not body["more"]:
            return records, cursor
    raise SessionFailed(f"{kind}: still more after 1000 pages")


def week_of_visits(device_id: str, households: list[Any], count: int, seed: int) -> bytes:
    """The push of a phone that was offline for a week: each household visited once, a few
    twice, spread over the last seven days."""
    rng, now = random.Random(seed), datetime.now(UTC)
    millis = int(now.timestamp() * 1000)
    ops = []
    for i in range(count):
        household = households[i] if i < len(households) else rng.choice(households)
        visited = now - timedelta(minutes=rng.randint(10, 7 * 24 * 60))
        ops.append(
            {
                "op_id": str(uuid.uuid4()),
                "device_seq": i + 1,
                "hlc": f"{millis:015d}-{i:04x}",
                "action": "create",
                "type": "visit",
                "id": str(uuid.uuid4()),
                "base_version": None,
                "data": visit_data(rng, household, visited),
            }
        )
    envelope = {
        "device_id": device_id,
        "schema": 1,
        "ops": ops,
        "device_time": now.astimezone(CHINA).isoformat(timespec="seconds"),
    }
    return dumps(envelope).encode()


@dataclass
class Phone:
    """What a cadre's phone keeps between syncs."""

    username: str
    device: tuple[str, str] | None = None  # (device id, token)
    households: list[Any] = field(default_factory=list)
    cursor: str | None = None


def session(base: str) -> aiohttp.ClientSession:
    """The phone's own keep-alive connection."""
    return aiohttp.ClientSession(
        base,
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def first_pull(
    http: aiohttp.ClientSession, tally: Tally, phone: Phone, args: argparse.Namespace
) -> None:
    """The scope from no cursor: the phone learns its households from it."""
    assert phone.device is not None
    records, phone.cursor = await pull_until_caught_up(
        http, tally, "pull_first", phone.device[1], None
    )
    tally.first_pull_records.append(len(records))
    phone.households = households_of(records)
    if len(phone.households) != args.households_per_cadre:
        raise SessionFailed(f"pull_first: {len(phone.households)} households in scope")


async def sync(base: str, phone: Phone, args: argparse.Namespace, tally: Tally, seed: int) -> None:
    """One cadre's evening sync: sign in and first pull if the phone is new, then push the
    week's visits and pull until caught up."""
    started = time.monotonic()
    tally.in_flight += 1
    tally.peak_in_flight = max(tally.peak_in_flight, tally.in_flight)
    try:
        async with session(base) as http:
            if phone.device is None:
                login = dumps({"username": phone.username, "password": PASSWORD, "label": "storm"})
                status, body = await request(
                    http, tally, "register", "POST", "/api/v1/devices", body=login.encode()
                )
                if status != 201:
                    raise SessionFailed(f"register: {status} {body}")
                phone.device = (body["device_id"], body["token"])
            if phone.cursor is None:
                await first_pull(http, tally, phone, args)
            device_id, token = phone.device
            push = week_of_visits(device_id, phone.households, args.visits, seed)
            status, body = await request(
                http, tally, "push", "POST", "/api/v1/sync/push", token, push
            )
            if status != 200:
                raise SessionFailed(f"push: {status} {body}")
            sent = {op["id"] for op in json.loads(push)["ops"]}
            statuses = Counter(r["status"] for r in body["results"])
            tally.op_statuses.update(statuses)
            tally.pushed_ids |= sent
            if statuses["applied"] + statuses["duplicate"] != len(sent):
                raise SessionFailed(f"push: op statuses {dict(statuses)}")
            records, phone.cursor = await pull_until_caught_up(
                http, tally, "pull", token, phone.cursor
            )
            tally.not_pulled_back += len(sent - {r["id"] for r in records if r["type"] == "visit"})
        tally.sessions_done += 1
        tally.session_seconds.append(time.monotonic() - started)
    except SessionFailed as exc:
        tally.error(str(exc).split(":")[0] + ": failed", str(exc))
    finally:
        tally.in_flight -= 1


async def catch_up(base: str, phones: list[Phone], args: argparse.Namespace) -> None:
    """``--returning``: every phone pulled its scope on an earlier day; done before the clock
    starts, eight phones at a time."""
    tally, gate = Tally(), asyncio.Semaphore(8)

    async def one(phone: Phone) -> None:
        async with gate, session(base) as http:
            await first_pull(http, tally, phone, args)

    await asyncio.wait_for(asyncio.gather(*(one(p) for p in phones)), args.timeout)
    if tally.errors:
        raise RuntimeError(f"catching up before the storm: {tally.examples}")


@dataclass
class Samples:
    rss_mib: list[float] = field(default_factory=list)
    pss_mib: list[float] = field(default_factory=list)
    load1: list[float] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    db_active: list[int] = field(default_factory=list)  # PostgreSQL backends running a query
    db_lock_waits: list[int] = field(default_factory=list)  # ... of them waiting for a lock


class LockProbe:
    """How many of the server's PostgreSQL backends are busy, and how many of those wait for
    a lock: with every push holding the version counter's row, the queue forms there."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)

    def __call__(self) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'),"
            " count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def close(self) -> None:
        self.conn.close()


async def watch(
    server_pid: int, tally: Tally, samples: Samples, probe: LockProbe | None, stop: asyncio.Event
) -> None:
    """Twice a second: the server's memory (master + workers), the load average, phones busy
    and on PostgreSQL the busy and lock-waiting backends."""
    while not stop.is_set():
        rss, pss = memory_mib(descendants([server_pid]))
        samples.rss_mib.append(rss)
        samples.pss_mib.append(pss)
        samples.load1.append(os.getloadavg()[0])
        samples.in_flight.append(tally.in_flight)
        if probe:
            active, waiting = await asyncio.to_thread(probe)
            samples.db_active.append(active)
            samples.db_lock_waits.append(waiting)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


async def storm(
    server: Server, phones: list[Phone], args: argparse.Namespace, probe: LockProbe | None
) -> tuple[Tally, Samples, dict[str, float]]:
    """Every phone at its random moment of the window; cancelled at the hard timeout."""
    tally, samples, stop = Tally(), Samples(), asyncio.Event()
    rng = random.Random(args.seed)
    arrivals = sorted(rng.uniform(0, args.window) for _ in phones)
    t0 = time.monotonic()

    async def arrive(at: float, phone: Phone, seed: int) -> None:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        await sync(f"http://127.0.0.1:{server.port}", phone, args, tally, seed)

    watcher = asyncio.create_task(watch(server.pid, tally, samples, probe, stop))
    tasks = [
        asyncio.create_task(arrive(at, phone, args.seed + i))
        for i, (at, phone) in enumerate(zip(arrivals, phones, strict=True))
    ]
    _, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    stop.set()
    await watcher
    clock = {"t0": t0, "end": time.monotonic(), "unfinished": float(len(pending))}
    return tally, samples, clock


# --- one backend ----------------------------------------------------------------------------


def database_figures(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    from server.storage.db import normalize_url

    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            head = conn.execute(text("SELECT value FROM counters WHERE name = 'version'")).scalar()
            return {
                "head": int(head or 0),
                "visits": conn.execute(text("SELECT count(*) FROM visits")).scalar() or 0,
                "ops": conn.execute(text("SELECT count(*) FROM ops")).scalar() or 0,
            }
    finally:
        engine.dispose()


def table_bytes(url: str, tables: tuple[str, ...] = ("visits", "ops")) -> dict[str, int]:
    """Bytes on disk of each table with its indexes, for sizing a larger database."""
    from sqlalchemy import create_engine, text

    from server.storage.db import normalize_url

    engine = create_engine(normalize_url(url))
    out = {}
    try:
        with engine.connect() as conn:
            for table in tables:
                if engine.dialect.name == "postgresql":
                    query = "SELECT pg_total_relation_size(:t)"
                else:  # dbstat: the pages of the table and of each of its indexes
                    query = (
                        "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m"
                        " ON m.name = d.name WHERE m.tbl_name = :t"
                    )
                out[table] = int(conn.execute(text(query), {"t": table}).scalar() or 0)
    finally:
        engine.dispose()
    return out


def stored_since(url: str, head: int) -> tuple[list[str], int]:
    """Ids of the visits stored after ``head``, and how many distinct op ids the ops log holds."""
    from sqlalchemy import create_engine, text

    from server.storage.db import normalize_url

    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            ids = list(
                conn.execute(
                    text("SELECT id FROM visits WHERE version > :h"), {"h": head}
                ).scalars()
            )
            ops = conn.execute(text("SELECT count(DISTINCT op_id) FROM ops")).scalar() or 0
        return ids, int(ops)
    finally:
        engine.dispose()


def counter_hold(
    app: Any, cadres: list[tuple[str, str]], args: argparse.Namespace
) -> dict[str, float]:
    """How long one push holds the version counter, with nothing else running: in-process
    (Flask test client), timing ``SqlStore.write`` — the transaction that takes the counter
    first (``SELECT … FOR UPDATE`` / ``BEGIN IMMEDIATE``) and lets go at commit. Pushes of
    the whole database, on every app server, pass this one at a time."""
    from server.storage.store import SqlStore

    held: list[float] = []
    write = SqlStore.write

    @contextlib.contextmanager
    def timed_write(self: SqlStore) -> Iterator[Any]:
        start = time.perf_counter()
        with write(self) as txn:
            yield txn
        held.append((time.perf_counter() - start) * 1000)

    walls = []
    client = app.test_client()
    tokens = preregister(app, cadres)
    SqlStore.write = timed_write  # type: ignore[method-assign]
    try:
        for i, (_, username) in enumerate(cadres):
            device_id, token = tokens[username]
            headers = {"Authorization": "Bearer " + token}
            pulled = client.get(f"/api/v1/sync/pull?limit={PULL_LIMIT}", headers=headers)
            households = households_of(pulled.get_json()["records"])
            body = week_of_visits(device_id, households, args.visits, args.seed + 10**6 + i)
            start = time.perf_counter()
            pushed = client.post(
                "/api/v1/sync/push", data=body, headers=headers, content_type="application/json"
            )
            walls.append((time.perf_counter() - start) * 1000)
            if pushed.status_code != 200:
                raise RuntimeError(f"in-process push: {pushed.status_code} {pushed.get_data()}")
    finally:
        SqlStore.write = write  # type: ignore[method-assign]
    return {
        "n": len(held),
        "held_p50": percentile(held, 0.5),
        "held_p95": percentile(held, 0.95),
        "push_p50": percentile(walls, 0.5),
    }


def run_backend(backend: Any, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = backend.template_url()
    zoufang(url, "db", "upgrade")
    print(
        f"[{backend.name}] seeding {args.devices:,} cadres × {args.households_per_cadre} "
        f"households, {args.history_weeks} weeks of history ...",
        flush=True,
    )
    started = time.perf_counter()
    app = make_app(url, workdir)
    county = build_county(
        app, args.devices, args.households_per_cadre, args.history_weeks, args.seed
    )
    tokens = preregister(app, county.cadres) if args.preregistered else {}
    phones = [Phone(username, tokens.get(username)) for _, username in county.cadres]
    with app.app_context():
        from server.storage.db import db

        db.engine.dispose()
    seed_s = time.perf_counter() - started
    before = database_figures(url)
    print(
        f"[{backend.name}] seeded in {seed_s:.0f} s: {county.households:,} households, "
        f"{county.people:,} people, {before['visits']:,} visits",
        flush=True,
    )
    with serving(url, workdir, backend.name, args.workers, args.threads) as server:
        db_pid = backend.pid()
        idle = memory_mib(descendants([server.pid]))
        if args.returning:
            print(f"[{backend.name}] first pulls before the storm ...", flush=True)
            asyncio.run(catch_up(f"http://127.0.0.1:{server.port}", phones, args))
        cpu0 = process_tree_cpu([server.pid]), process_tree_cpu([db_pid]) if db_pid else 0.0
        client0, load_start = time.process_time(), load_average()
        probe = LockProbe(url) if backend.name == "postgres" else None
        print(
            f"[{backend.name}] storm: {args.devices:,} phones over {args.window:.0f} s "
            f"(hard stop after {args.timeout:.0f} s) ...",
            flush=True,
        )
        tally, samples, clock = asyncio.run(storm(server, phones, args, probe))
        cpu = (
            process_tree_cpu([server.pid]) - cpu0[0],
            (process_tree_cpu([db_pid]) - cpu0[1]) if db_pid else 0.0,
        )
        client_cpu, load_end = time.process_time() - client0, load_average()
        if probe:
            probe.close()
    stored, distinct_ops = stored_since(url, before["head"])
    after = database_figures(url)
    sizes = table_bytes(url)
    pushed = tally.pushed_ids
    print(f"[{backend.name}] in-process pushes, timing the counter lock ...", flush=True)
    hold = counter_hold(app, county.cadres[: args.hold_pushes], args)
    return {
        "backend": backend.name,
        "version": backend.version(),
        "county": {
            "households": county.households,
            "villages": county.villages,
            "people": county.people,
            "cadres": len(county.cadres),
            "history_visits": before["visits"],
            "seed_s": round(seed_s),
        },
        "tally": tally,
        "samples": samples,
        "clock": clock,
        "cpu": {"gunicorn": cpu[0], "database": cpu[1], "client": client_cpu},
        "idle_memory_mib": idle,
        "hold": hold,
        "bytes_per_row": {
            "visit": sizes["visits"] / max(after["visits"], 1),
            "op": sizes["ops"] / max(after["ops"], 1),
        },
        "load": {"start": load_start, "end": load_end, "max1": max(samples.load1, default=0)},
        "server_statuses": dict(access_statuses(server.log)),
        "check": {
            "pushed": len(pushed),
            "stored": len(stored),
            "stored_distinct": len(set(stored)),
            "missing": len(pushed - set(stored)),
            "unexpected": len(set(stored) - pushed),
            "visits_added": after["visits"] - before["visits"],
            "ops_logged": after["ops"] - before["ops"],
            "distinct_op_ids": distinct_ops,
        },
    }


# --- the report -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def peak_rate(times: list[float], width: float = 10.0) -> float:
    """The most answers in any ``width``-second stretch, per second."""
    times, best, first = sorted(times), 0, 0
    if times:
        width = max(1.0, min(width, times[-1] - times[0]))
    for last, moment in enumerate(times):
        while moment - times[first] > width:
            first += 1
        best = max(best, last - first + 1)
    return best / width


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    tally, clock, cpu = r["tally"], r["clock"], r["cpu"]
    requests = sum(len(v) for v in tally.latencies.values())
    seconds = clock["end"] - clock["t0"]
    server_cpu = cpu["gunicorn"] + cpu["database"]
    check = r["check"]
    sound = (
        check["pushed"] == check["stored"] == check["stored_distinct"] == check["visits_added"]
        and check["missing"] == check["unexpected"] == 0
        and check["ops_logged"] == check["distinct_op_ids"] == check["pushed"]
    )
    return {
        "requests": requests,
        "seconds": seconds,
        "req_s": requests / seconds,
        "visits_s": check["stored"] / seconds,
        "peak_req_s": peak_rate(tally.finished_at),
        "server_cpu": server_cpu,
        "cores_busy": server_cpu / seconds,
        "cpu_ms_per_phone": server_cpu / max(tally.sessions_done, 1) * 1000,
        "cpu_ms_per_request": server_cpu / max(requests, 1) * 1000,
        "errors": sum(tally.errors.values()),
        "retried": sum(tally.retried.values()),
        "sound": sound,
        "latency": {
            kind: {
                "n": len(values),
                "p50": percentile(values, 0.50),
                "p95": percentile(values, 0.95),
                "p99": percentile(values, 0.99),
                "max": max(values, default=0.0),
            }
            for kind, values in tally.latencies.items()
            if values
        },
    }


def report(args: argparse.Namespace, host: dict[str, str], runs: list[dict[str, Any]]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    first = runs[0]["county"]
    steps = (
        "a device token written beforehand (no sign-in)"
        if args.preregistered
        else f"a real Argon2id sign-in ({argon2_ms():.0f} ms CPU per check in-process)"
    ) + ", a first pull, "
    if args.returning:
        steps = "(signed in and caught up before the clock started) "
    lines = [
        f"### {stamp} — `bench/bench_load.py {command_line(args)}`",
        "",
        f"Commit {host['source']}; {host['cpu']}, {host['cores']} cores, {host['memory']}; "
        f"Python {host['python']}; {', '.join(r['version'] for r in runs)}. `zoufang serve "
        f"--workers {args.workers} --threads {args.threads}`, the phones in one asyncio "
        f"process on the same cores. County: {first['households']:,} households in "
        f"{first['villages']} villages, {first['people']:,} people, {first['cadres']:,} cadres "
        f"with {args.households_per_cadre} 包保 households each, "
        f"{first['history_visits']:,} visits of history. Each phone: {steps}"
        f"a push of {args.visits} visits in one request, a pull until caught up; arrivals "
        f"uniformly random over {args.window:.0f} s.",
        "",
        "| backend | phones done | requests | req/s (peak 10 s) | visits stored | visits/s "
        "| server CPU s (gunicorn + db) | cores busy | CPU ms/phone "
        "| memory MiB, RSS / PSS: peak (idle) "
        "| errors | retried 429/503 | stored = pushed | load avg start → max → end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in runs:
        s, t, load = r["summary"], r["tally"], r["load"]
        db_cpu = f" + {r['cpu']['database']:.0f}" if r["cpu"]["database"] else ""
        lines.append(
            f"| {r['backend']} | {t.sessions_done:,} of {r['county']['cadres']:,} "
            f"| {s['requests']:,} | {s['req_s']:.1f} ({s['peak_req_s']:.1f}) "
            f"| {r['check']['stored']:,} | {s['visits_s']:.1f} "
            f"| {r['cpu']['gunicorn']:.0f}{db_cpu} | {s['cores_busy']:.2f} "
            f"| {s['cpu_ms_per_phone']:.0f} | {max(r['samples'].rss_mib, default=0):.0f} / "
            f"{max(r['samples'].pss_mib, default=0):.0f} "
            f"({r['idle_memory_mib'][0]:.0f} / {r['idle_memory_mib'][1]:.0f}) "
            f"| {s['errors']} | {s['retried']} | {'yes' if s['sound'] else '**no**'} "
            f"| {load['start'].split()[0]} → {load['max1']:.2f} → {load['end'].split()[0]} |"
        )
    lines += [
        "",
        "| backend | request | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        for kind, q in r["summary"]["latency"].items():
            lines.append(
                f"| {r['backend']} | {kind} | {q['n']:,} | {q['p50']:.0f} | {q['p95']:.0f} "
                f"| {q['p99']:.0f} | {q['max']:.0f} |"
            )
    lines.append("")
    for r in runs:
        t, c = r["tally"], r["check"]
        notes = [
            f"op statuses {dict(t.op_statuses)}",
            f"server access log {dict(sorted(r['server_statuses'].items()))}",
            f"stored {c['stored']:,} new visits for {c['pushed']:,} pushed "
            f"({c['missing']} missing, {c['unexpected']} unexpected, "
            f"{c['stored'] - c['stored_distinct']} duplicate ids), "
            f"ops log +{c['ops_logged']:,} rows ({c['distinct_op_ids']:,} distinct op ids)",
            f"first pull {statistics.fmean(t.first_pull_records or [0]):.0f} records on average"
            if t.first_pull_records
            else "no first pulls in the storm",
            f"own visits not pulled back {t.not_pulled_back}",
            f"phone session p50 {percentile(t.session_seconds, 0.5):.2f} s, "
            f"p99 {percentile(t.session_seconds, 0.99):.2f} s, "
            f"peak {t.peak_in_flight} phones at once",
            f"client CPU {r['cpu']['client']:.0f} s; "
            f"{t.bytes_up / 1e6:.1f} MB up, {t.bytes_down / 1e6:.1f} MB down (gzip)",
        ]
        if t.retried:
            notes.append(f"retried {dict(t.retried)}")
        hold, size = r["hold"], r["bytes_per_row"]
        notes.append(
            f"on disk with indexes: {size['visit']:.0f} bytes per stored visit, "
            f"{size['op']:.0f} per ops log row"
        )
        notes.append(
            f"version counter held by one {args.visits}-visit push (in-process, alone, "
            f"n={hold['n']}): p50 {hold['held_p50']:.1f} ms, p95 {hold['held_p95']:.1f} ms, "
            f"the whole request p50 {hold['push_p50']:.1f} ms; so at most "
            f"{1000 / hold['held_p50']:.0f} pushes/s per database"
        )
        waits, active = r["samples"].db_lock_waits, r["samples"].db_active
        if waits:
            notes.append(
                f"PostgreSQL backends busy {statistics.fmean(active):.2f} on average "
                f"(max {max(active)}), waiting for a lock {statistics.fmean(waits):.2f} "
                f"(max {max(waits)}), sampled twice a second"
            )
        if t.errors:
            notes.append(f"errors {dict(t.errors)}; e.g. {t.examples[:2]}")
        if r["clock"]["unfinished"]:
            notes.append(f"**{r['clock']['unfinished']:.0f} phones cancelled at the hard stop**")
        lines.append(f"- {r['backend']}: " + "; ".join(notes) + ".")
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    parts = [f"--backend {args.backend}", f"--devices {args.devices}", f"--window {args.window:g}"]
    if args.returning or args.preregistered:
        parts.append("--returning" if args.returning else "--preregistered")
    defaults = parse_args([])
    for name in ("households_per_cadre", "visits", "history_weeks", "workers", "threads"):
        if getattr(args, name) != getattr(defaults, name):
            parts.append(f"--{name.replace('_', '-')} {getattr(args, name)}")
    return " ".join(parts)


def to_json(value: Any) -> Any:
    if isinstance(value, Tally | Samples):
        out = {k: to_json(v) for k, v in vars(value).items() if k not in ("finished_at",)}
        return out | ({"pushed_ids": len(value.pushed_ids)} if isinstance(value, Tally) else {})
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_json(v) for v in value]
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--devices", type=int, default=3000, help="phones, one cadre each")
    parser.add_argument("--window", type=float, default=600, help="seconds the arrivals span")
    parser.add_argument("--timeout", type=float, help="hard stop, seconds (default window+300)")
    parser.add_argument("--households-per-cadre", type=int, default=16)
    parser.add_argument("--visits", type=int, default=20, help="visit ops per push")
    parser.add_argument("--history-weeks", type=int, default=4)
    parser.add_argument(
        "--preregistered",
        action="store_true",
        help="device tokens written beforehand: no sign-in requests",
    )
    parser.add_argument(
        "--returning",
        action="store_true",
        help="phones that synced before (implies --preregistered): their first pull is done "
        "before the clock starts, so the storm is push + pull from the cursor",
    )
    parser.add_argument(
        "--hold-pushes",
        type=int,
        default=200,
        help="in-process pushes after the storm that time the counter lock",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if not 1 <= args.devices <= 20_000 or not 1 <= args.window <= 3600:
        parser.error("--devices must be 1..20000 and --window 1..3600")
    if not 1 <= args.households_per_cadre <= 200 or not 1 <= args.visits <= 1000:
        parser.error("--households-per-cadre must be 1..200 and --visits 1..1000")
    if not 0 <= args.history_weeks <= 52 or not 1 <= args.workers * args.threads <= 256:
        parser.error("--history-weeks must be 0..52, workers × threads 1..256")
    args.timeout = min(args.timeout or args.window + 300, 2 * 3600)
    args.preregistered = args.preregistered or args.returning
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    host = machine()
    names = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    runs = []
    with tempfile.TemporaryDirectory(prefix="zoufang-load-") as tmp:
        for name in names:
            backend = (SqliteBackend if name == "sqlite" else PostgresBackend)(Path(tmp))
            try:
                run = run_backend(backend, args, Path(tmp))
            finally:
                backend.close()
            run["summary"] = summarize(run)
            runs.append(run)
    text = report(args, host, runs)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"load-{stamp}.json").write_text(
        json.dumps(
            to_json({"args": vars(args), "host": host, "runs": runs}),
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
    print(f"\nraw figures: {(RESULTS / f'load-{stamp}.json').relative_to(ROOT)}")
    if not all(r["summary"]["sound"] and not r["summary"]["errors"] for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
