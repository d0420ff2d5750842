"""Report speed on a county-sized database: coverage of one week and the 12-week trend.

    .venv/bin/python bench/bench_reports.py --quick                 # 5,000 households, prints only
    .venv/bin/python bench/bench_reports.py                         # 50,000 households, a year of
                                                                    # visits, appends to README

A county of 50,000 households (15 townships, 200 villages, 3,000 cadres) and a year of visits
(~2.6 million) is written straight into the database — SQLite through SqlStore's own insert,
PostgreSQL through COPY of the same rows — then each report is timed in-process (the
function the API view calls) and through the HTTP API (Flask test client, with auth and JSON).
Targets (issue 5): coverage of the county for one week < 200 ms, 12-week trend < 1 s; (issue
14) the first page of the visit list of a county week < 300 ms, the submissions workbook of
~20,000 visits (a township month) < 10 s with memory bounded (peak RSS is printed).
Timings are the median of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_sync import ANSWER_KEYS, CHINA, append_to_readme, machine, store_visits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.pgserver: tests/ is not an installed package

README = ROOT / "bench" / "README.md"
TOWNSHIPS = 15
VILLAGES = 200
CADRES = 3000
WEEKLY_SHARE = 0.92  # the rest are monthly-policy households
VISITED_IN_A_WEEK = 0.96
SECOND_VISIT = 0.10
LATE_SHARE = 0.03  # visits synced more than a week after they were made
CHUNK = 10_000
TARGETS_MS = {
    "coverage, county, last week": 200.0,
    "trend, county, 12 weeks": 1000.0,
    "API GET visits, county, last week, first page": 300.0,  # issue 14
    "API GET submissions.xlsx, township, last month": 10_000.0,  # ~20,000 visits at 50,000
}
#: timed once, without a warm-up: a county month's export is every visit of a month
ONCE = {"API GET submissions.xlsx, county, last month"}
NOTES = ("老人身体尚可，已叮嘱按时服药", "已宣传防诈骗知识", "家中取暖设施正常", None, None)
_PICK = random.Random(0)
ANSWERS = [{key: key.endswith("_ok") or _PICK.random() < 0.7 for key in ANSWER_KEYS}
           for _ in range(32)]  # fmt: skip


REPORT_RUNS = "## Report runs (appended by bench_reports.py, newest last)"


def make_app(url: str, workdir: Path) -> Any:
    from server import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench-reports",
            "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
        }
    )
    app.instance_path = str(workdir)
    return app


def region(id_: str, parent: str | None, level: str, name: str, code: str) -> tuple[str, str, Any]:
    return ("region", id_, {"parent_id": parent, "level": level, "name": name, "code": code})


def build_county(app: Any, households: int, seed: int) -> dict[str, Any]:
    """Regions, households and users with their 包保 assignments; returns what the visit
    generator needs."""
    from sqlalchemy import insert

    from server.auth import hash_password
    from server.service import create_server_records, store
    from server.storage.models import Assignment, User

    rng = random.Random(seed)
    county = str(uuid.uuid4())
    items: list[tuple[str, str, dict[str, Any]]] = [
        region(county, None, "county", "青山县", "341823")
    ]
    townships = [str(uuid.uuid4()) for _ in range(TOWNSHIPS)]
    villages: list[tuple[str, str]] = []
    for t, township in enumerate(townships):
        items.append(region(township, county, "township", f"第{t + 1}镇", f"341823{t + 1:03d}"))
    for v in range(VILLAGES):
        township = townships[v % TOWNSHIPS]
        village = str(uuid.uuid4())
        villages.append((village, township))
        items.append(region(village, township, "village", f"第{v + 1}村", f"3418231{v + 1:04d}"))
    homes: list[tuple[str, str, str]] = []  # (id, village, policy)
    for i in range(households):
        village = villages[i % VILLAGES][0]
        policy = "weekly" if rng.random() < WEEKLY_SHARE else "monthly"
        household = str(uuid.uuid4())
        homes.append((household, village, policy))
        items.append(("household", household, {
            "village_id": village, "code": f"H{i:07d}", "head_name": f"户主{i}",
            "address": f"{i % 12 + 1}组", "phone": f"139{i:08d}", "category": "脱贫户",
            "status": "active", "visit_policy": policy, "lat": None, "lon": None, "notes": None,
        }))  # fmt: skip
    password = hash_password("bench-password", {"time_cost": 1, "memory_cost": 1024,
                                                "parallelism": 1})  # fmt: skip
    users, assignments = [], []
    now = datetime.now(UTC).replace(tzinfo=None)
    for c in range(CADRES):
        user = str(uuid.uuid4())
        users.append({"id": user, "username": f"cadre{c:04d}", "name": f"干部{c}", "role": "cadre",
                      "password_hash": password, "active": True, "created_at": now})  # fmt: skip
        if c < 2 * VILLAGES:  # two village cadres per village
            assignments.append({"user_id": user, "kind": "region",
                                "target_id": villages[c % VILLAGES][0]})  # fmt: skip
        else:  # 包保 cadres: a share of the households each
            share = homes[(c - 2 * VILLAGES) :: CADRES - 2 * VILLAGES]
            assignments += [{"user_id": user, "kind": "household", "target_id": h[0]}
                            for h in share]  # fmt: skip
    admin = str(uuid.uuid4())
    users.append({"id": admin, "username": "admin", "name": "管理员", "role": "admin",
                  "password_hash": password, "active": True, "created_at": now})  # fmt: skip
    assignments.append({"user_id": admin, "kind": "region", "target_id": county})
    for t, township in enumerate(townships):
        user = str(uuid.uuid4())
        users.append({"id": user, "username": f"sup{t:02d}", "name": f"督导{t}",
                      "role": "supervisor", "password_hash": password, "active": True,
                      "created_at": now})  # fmt: skip
        assignments.append({"user_id": user, "kind": "region", "target_id": township})
    with app.app_context():
        create_server_records(items, actor=None)
        with store().engine.begin() as conn:
            conn.execute(insert(User), users)
            conn.execute(insert(Assignment), assignments)
    return {"county": county, "townships": townships, "villages": villages, "homes": homes,
            "visitors": [u["id"] for u in users[:CADRES]]}  # fmt: skip


def visit_data(rng: random.Random, household: str, visited: datetime, received: datetime,
               visitor: str, device: str) -> dict[str, Any]:  # fmt: skip
    """What the server stores for a pushed visit (sync.engine adds the last seven fields)."""
    home = rng.random() < 0.8
    return {
        "household_id": household,
        "visited_at": visited.astimezone(CHINA).isoformat(timespec="seconds"),
        "mode": "home" if home else "phone",
        "form_id": "weekly_visit",
        "form_version": 1,
        "answers": rng.choice(ANSWERS),
        "people_seen": [],
        "location": {"lat": 30.1, "lon": 118.5, "accuracy": 12.0} if home else None,
        "notes": rng.choice(NOTES),
        "corrects": None,
        "visitor_id": visitor,
        "device_id": device,
        "visited_at_effective": visited.astimezone(CHINA).isoformat(timespec="seconds"),
        "received_at": received.astimezone(CHINA).isoformat(timespec="seconds"),
        "voided": False,
        "void_reason": None,
        "review": [],
    }


def visit_times(rng: random.Random, homes: list[tuple[str, str, str]], weeks: int,
                today: date) -> list[tuple[datetime, str]]:  # fmt: skip
    """(time, household) of every visit of the last ``weeks`` weeks, in time order."""
    monday = today - timedelta(days=today.weekday())
    out: list[tuple[datetime, str]] = []
    for back in range(weeks, 0, -1):
        week = monday - timedelta(weeks=back)
        for household, _, policy in homes:
            if policy == "weekly":
                count = (rng.random() < VISITED_IN_A_WEEK) + (rng.random() < SECOND_VISIT)
            else:
                count = rng.random() < 7 / 30  # about once a month
            for _ in range(count):
                day = week + timedelta(days=rng.randrange(7))
                moment = datetime(day.year, day.month, day.day, 8, tzinfo=CHINA) + timedelta(
                    seconds=rng.randrange(10 * 3600)
                )
                out.append((moment, household))
    out.sort()
    return out


def load_visits(app: Any, county: dict[str, Any], weeks: int, seed: int) -> dict[str, Any]:
    """A year of visits straight into the visits table; a few voided, a few late."""

    from server.service import store
    from sync.store import Record

    rng = random.Random(seed + 1)
    villages = {h: v for h, v, _ in county["homes"]}
    today = datetime.now(CHINA).date()
    times = visit_times(rng, county["homes"], weeks, today)
    device = str(uuid.uuid4())
    start = time.perf_counter()
    with app.app_context():
        s = store()
        for first in range(0, len(times), CHUNK):
            with s.write() as txn:
                if not s.postgres:  # a bulk load wants more than the 2 MB default page cache
                    txn.conn.exec_driver_sql("PRAGMA cache_size=-1000000")
                records = []
                for moment, household in times[first : first + CHUNK]:
                    delay = timedelta(days=rng.randint(8, 20)) if rng.random() < LATE_SHARE else (
                        timedelta(minutes=rng.randint(5, 2 * 24 * 60)))  # fmt: skip
                    received = min(moment + delay, datetime.now(UTC))
                    data = visit_data(rng, household, moment, received,
                                      rng.choice(county["visitors"]), device)  # fmt: skip
                    if rng.random() < 0.005:
                        data.update(voided=True, void_reason="录入错误",
                                    voided_at=received.isoformat(timespec="seconds"))  # fmt: skip
                    records.append(Record("visit", str(uuid.uuid4()), txn.allocate_version(),
                                          False, data, villages[household], household))  # fmt: skip
                store_visits(txn, records, s.postgres)
            if first // CHUNK % 25 == 0:
                print(f"    {first + len(records):,} of {len(times):,} visits", flush=True)
    seconds = time.perf_counter() - start
    return {"visits": len(times), "seconds": round(seconds, 1),
            "rate": round(len(times) / seconds)}  # fmt: skip


def summarize(app: Any) -> str:
    """What the visit_summary job does within minutes of the visits' arrival (server/summary.py):
    after a load, the whole summary is built at once."""
    from server.jobs import run_now

    with app.app_context():
        started = time.perf_counter()
        result = run_now("visit_summary")
        assert result.status == "ok", result
    return f"{result.message} in {time.perf_counter() - started:.1f} s"


def analyze(app: Any) -> None:
    """What autovacuum / a DBA's ANALYZE does shortly after such a load."""
    from sqlalchemy import text

    from server.service import store

    with app.app_context():
        engine = store().engine
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE" if store().postgres else "ANALYZE"))


def timed(call: Callable[[], Any], repeats: int, warm_up: bool = True) -> dict[str, float]:
    """Median wall time of ``repeats`` calls after a warm-up, and the median CPU time this
    process spent (all of the work on SQLite; only the Python side on PostgreSQL)."""
    if warm_up:
        call()  # caches, the planner
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return {"median_ms": round(statistics.median(walls), 1), "max_ms": round(max(walls), 1),
            "cpu_ms": round(statistics.median(cpus), 1)}  # fmt: skip


def peak_rss_mb() -> float:
    """The most memory this process has held so far (Linux reports kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def measure(app: Any, repeats: int) -> dict[str, dict[str, float]]:
    from sqlalchemy import text

    from server.reports import coverage as reports
    from server.service import store

    today = datetime.now(CHINA).date()
    this_week = reports.Period.containing(today, "weekly")
    last_week = this_week.previous().label
    last_month = reports.Period.containing(today, "monthly").previous().label
    with app.app_context(), store().engine.connect() as conn:
        region = conn.execute(text("SELECT id FROM regions WHERE level = 'county'")).scalar()
        township = conn.execute(
            text("SELECT id FROM regions WHERE level = 'township' ORDER BY code LIMIT 1")
        ).scalar()
        village = conn.execute(
            text("SELECT id FROM regions WHERE parent_id = :t ORDER BY code LIMIT 1"),
            {"t": township},
        ).scalar()
    as_of = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    client = app.test_client()
    login = {"username": "admin", "password": "bench-password", "label": "bench"}
    token = client.post("/api/v1/devices", json=login).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def api(path: str, **query: Any) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(path, query_string=query, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            response.get_data()  # a streamed answer is timed to its last byte
            return response

        return call

    cases: dict[str, Callable[[], Any]] = {
        "coverage, county, last week": lambda: reports.coverage(last_week, region),
        "coverage, county, this week": lambda: reports.coverage(this_week.label, region),
        "coverage, county, last week as_of 3 days ago": lambda: reports.coverage(
            last_week, region, as_of
        ),
        "coverage, county, last month (monthly households)": lambda: reports.coverage(
            last_month, region
        ),
        "coverage, township, last week": lambda: reports.coverage(last_week, township),
        "coverage, village, last week": lambda: reports.coverage(last_week, village),
        "trend, county, 12 weeks": lambda: reports.trend(region, 12),
        "overdue list, county": lambda: reports.overdue(region),
        "overdue list, township": lambda: reports.overdue(township),
        "API GET coverage, county, last week": api(
            "/api/v1/reports/coverage", period=last_week, region_id=region
        ),
        "API GET trend, county, 12 weeks": api("/api/v1/reports/trend", region_id=region, weeks=12),
        "API GET visits, county, last week, first page": api(
            "/api/v1/reports/visits", period=last_week, region_id=region, limit=50
        ),
        "API GET visits, village, last week, first page": api(
            "/api/v1/reports/visits", period=last_week, region_id=village, limit=50
        ),
        "API GET submissions.xlsx, township, last month": api(
            "/api/v1/reports/submissions.xlsx",
            form_id="weekly_visit",
            period=last_month,
            region_id=township,
        ),
        "API GET submissions.xlsx, county, last month": api(
            "/api/v1/reports/submissions.xlsx",
            form_id="weekly_visit",
            period=last_month,
            region_id=region,
        ),
    }
    out = {}
    print(f"    load average before timing: {load_average()}", flush=True)
    with app.app_context():
        for name, call in cases.items():
            out[name] = timed(call, 1, warm_up=False) if name in ONCE else timed(call, repeats)
            print(f"    {name:<52} {out[name]['median_ms']:>9.1f} ms", flush=True)
        print(f"    peak RSS of this process: {peak_rss_mb():,.0f} MB", flush=True)
        summary = reports.coverage(last_week, region)["summary"]
        print(f"    (last week: {summary})")
    return out


def run_backend(name: str, url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build and load the county unless ``url`` holds one already, then time the reports."""
    from sqlalchemy import text

    from server.service import store
    from server.storage.upgrade import upgrade

    app = make_app(url, workdir)
    upgrade(app)
    with app.app_context(), store().engine.connect() as conn:
        loaded = conn.execute(text("SELECT count(*) FROM households")).scalar()
    load: dict[str, Any] = {"visits": 0, "seconds": 0.0, "rate": 0, "reused": True}
    if not loaded:
        print(f"{name}: building the county", flush=True)
        county = build_county(app, args.households, args.seed)
        print(f"{name}: loading {args.weeks} weeks of visits", flush=True)
        load = load_visits(app, county, args.weeks, args.seed)
        print(f"{name}: loaded {load['visits']:,} visits in {load['seconds']} s", flush=True)
    load["summary"] = summarize(app)
    print(f"{name}: visit summary {load['summary']}", flush=True)
    if not loaded:
        analyze(app)
    with app.app_context(), store().engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar() if store().postgres else ""
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("households", "visits", "users", "assignments")
        }
    if args.load_only:
        return {}
    print(f"{name}: timing ({counts})", flush=True)
    load_now = load_average()
    timings = measure(app, args.repeats)
    return {"backend": name, "version": version, "load": load, "counts": counts,
            "load_average": load_now, "timings": timings}  # fmt: skip


def report(args: argparse.Namespace, host: dict[str, str], runs: list[dict[str, Any]]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Reports — {stamp}",
        "",
        f"`bench/bench_reports.py --households {args.households} --weeks {args.weeks} "
        f"--repeats {args.repeats}`; {host['cpu']}, {host['cores']} cores, {host['memory']}; "
        f"Python {host['python']}, SQLite {host['sqlite']}"
        + "".join(f", PostgreSQL {r['version']}" for r in runs if r["version"])
        + f"; {host['os']}. In-process calls (the function the API view calls) and API calls"
        " through the Flask test client; wall-clock median of the repeats after a warm-up, in"
        " ms; for SQLite also the CPU time of the process (all of the query work), which the"
        " other processes on the machine do not inflate. Load average when timing started: "
        + ", ".join(f"{r['backend']} {r['load_average']}" for r in runs)
        + ".",
        "",
        "| report | " + " | ".join(r["backend"] for r in runs) + " | target |",
        "|---|" + "---:|" * len(runs) + "---:|",
    ]
    for name in runs[0]["timings"]:
        target = TARGETS_MS.get(name)
        cells = []
        for run in runs:
            timing = run["timings"][name]
            value = timing["median_ms"]
            mark = "" if target is None else (" ✓" if value < target else " ✗")
            cpu = f" (cpu {timing['cpu_ms']:,.0f})" if run["backend"] == "SQLite" else ""
            cells.append(f"{value:,.1f}{mark}{cpu}")
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {f'< {target:,.0f}' if target else ''} |"
        )
    lines.append("")
    for run in runs:
        load, counts = run["load"], run["counts"]
        lines.append(
            f"- {run['backend']}: {counts['households']:,} households, {counts['visits']:,} visits,"
            f" {counts['users']:,} users; loaded in {load['seconds']} s"
            f" ({load['rate']:,} visits/s); visit summary job: {load['summary']}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=47)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="5,000 households; README untouched")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    parser.add_argument(
        "--url",
        action="append",
        help="an existing database, loaded unless it holds the county already, and kept "
        "(repeatable; replaces --backend)",
    )
    parser.add_argument("--load-only", action="store_true", help="with --url: load, time nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.households, args.no_readme = 5_000, True
    host = machine()
    workdir = Path(tempfile.mkdtemp(prefix="zoufang-bench-reports-"))
    runs = []
    try:
        for url in args.url or []:
            kind = "PostgreSQL" if url.startswith("postgres") else "SQLite"
            runs.append(run_backend(kind, url, workdir, args))
        if not args.url and args.backend in ("sqlite", "both"):
            runs.append(run_backend("SQLite", f"sqlite:///{workdir / 'bench.db'}", workdir, args))
        if not args.url and args.backend in ("postgres", "both"):
            from sqlalchemy import create_engine, text

            from tests import pgserver

            server = pgserver.start()
            try:
                admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text("CREATE DATABASE zoufang_bench"))
                admin.dispose()
                url = server.url.rsplit("/", 1)[0] + "/zoufang_bench"
                runs.append(run_backend("PostgreSQL", url, workdir, args))
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.load_only:
        return
    text_ = report(args, host, runs)
    print()
    print(text_)
    print(json.dumps(runs, ensure_ascii=False))
    if not args.no_readme:
        append_to_readme(text_, REPORT_RUNS)
        print(f"appended to {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
