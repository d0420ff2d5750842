"""A province's coverage page on generated snapshots: 100 counties, a year of weeks.

    .venv/bin/python bench/bench_province.py --no-readme      # prints only
    .venv/bin/python bench/bench_province.py                  # appends to bench/README.md

A province region with ``--counties`` counties, each with 15 townships, and ``--weeks`` weeks
of the Monday job's snapshots per county (its ``coverage_county`` row, and the ``bulletin``
rows of the county and its townships that share the table) are written straight into the
database. Then the province supervisor's two requests of the dashboard are timed through the
HTTP API (Flask test client, with auth and JSON): the coverage of last week and the 12-week
trend. Target (issue 17): the province's coverage < 1 s for 100 counties. Median of
``--repeats`` runs after one warm-up run; SQLite and a throwaway PostgreSQL.

With ``--databases`` also the province as docs/scale.md designs it: one SQLite file per county
(its county region, townships and snapshots), a province database with the province region,
the counties' regions and its supervisor, and the province app of ZOUFANG_COUNTIES reading
every county file for each request (server/reports/province_counties.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_sync import append_to_readme, machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.pgserver: tests/ is not an installed package

README = ROOT / "bench" / "README.md"
TOWNSHIPS = 15
TARGET_MS = 1000.0
PASSWORD = "bench-province-2026"


PROVINCE_RUNS = "## Province runs (appended by bench_province.py, newest last)"


def build(app: Any, counties: int, weeks: int, seed: int) -> str:
    """The province, its counties and townships, and their snapshots; returns the province id."""
    from server.admin.accounts import create_user
    from server.service import create_server_records

    rng = random.Random(seed)
    province_id = str(uuid.uuid4())
    items = [("region", province_id, _region(None, "province", "安徽省", "34"))]
    regions: list[tuple[str, list[str]]] = []
    for c in range(counties):
        county_id = str(uuid.uuid4())
        items.append(("region", county_id, _region(province_id, "county", f"县{c}", f"34{c:04d}")))
        townships = [str(uuid.uuid4()) for _ in range(TOWNSHIPS)]
        for t, township_id in enumerate(townships):
            data = _region(county_id, "township", f"县{c}镇{t}", f"34{c:04d}{t:02d}")
            items.append(("region", township_id, data))
        regions.append((county_id, townships))
    with app.app_context():
        create_server_records(items, actor=None)
        create_user("sup_province", PASSWORD, "supervisor", [province_id], [], "省督导")
        keep_snapshots(regions, weeks, rng)
    return province_id


def keep_snapshots(regions: list[tuple[str, list[str]]], weeks: int, rng: random.Random) -> None:
    """``weeks`` weeks of the Monday job's rows for each county and its townships, in the
    current app's database."""
    from sqlalchemy import insert

    from server.reports import province
    from server.reports.periods import week_label
    from server.service import store
    from server.storage.models import Snapshot

    today = datetime.now(UTC).date()
    rows = []
    for w in range(1, weeks + 1):
        period = week_label(today - timedelta(weeks=w))
        taken_at = datetime.combine(today - timedelta(weeks=w - 1), datetime.min.time())
        for county_id, townships in regions:
            due = rng.randint(30_000, 60_000)
            visited = int(due * rng.uniform(0.85, 0.99))
            summary = {"due": due, "visited": visited, "overdue": due - visited,
                       "coverage": round(visited / due, 4)}  # fmt: skip
            body = {"period": period, "region": {"id": county_id}, "as_of": None}
            rows.append(_snapshot(province.KIND, period, county_id, taken_at,
                                  {**body, "summary": summary}))  # fmt: skip
            bulletin = {**body, "summary": summary, "children": [
                {"region_id": t, "due": due // TOWNSHIPS} for t in townships]}  # fmt: skip
            for region_id in [county_id, *townships]:
                rows.append(_snapshot("bulletin", period, region_id, taken_at, bulletin))
    with store().engine.begin() as conn:
        for start in range(0, len(rows), 5_000):
            conn.execute(insert(Snapshot), rows[start : start + 5_000])


def _region(parent: str | None, level: str, name: str, code: str) -> dict[str, Any]:
    return {"parent_id": parent, "level": level, "name": name, "code": code}


def _snapshot(kind: str, period: str, region_id: str, taken_at: datetime, data: Any) -> dict:
    return {
        "kind": kind,
        "period": period,
        "region_id": region_id,
        "taken_at": taken_at,
        "data": json.dumps(data, ensure_ascii=False),
    }


def timed(call: Any, repeats: int) -> float:
    call()  # warm-up
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 1)


def run_backend(
    kind: str,
    url: str,
    workdir: Path,
    args: argparse.Namespace,
    standby: Any = None,
) -> dict[str, Any]:
    """Build and time on ``url``; with ``standby`` (a tests.pgserver standby of its server),
    the reports read the standby's copy of the database (ZOUFANG_REPORTS_DATABASE_URL)."""
    from server import create_app
    from server.storage.upgrade import upgrade

    config = {"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True}
    if standby is not None:
        config["REPORTS_DATABASE_URL"] = standby.url.rsplit("/", 1)[0] + "/" + url.rsplit("/")[-1]
    app = create_app(config)
    app.instance_path = str(workdir / kind)
    upgrade(app)
    started = time.perf_counter()
    province_id = build(app, args.counties, args.weeks, args.seed)
    loaded = round(time.perf_counter() - started, 1)
    replayed = _replayed(url, standby) if standby is not None else None
    return {
        "backend": kind,
        "loaded_s": loaded,
        "replayed_ms": replayed,
        "snapshots": args.counties * args.weeks * (TOWNSHIPS + 2),
        **time_requests(app, province_id, args),
    }


def time_requests(app: Any, province_id: str, args: argparse.Namespace) -> dict[str, float]:
    """The province supervisor's two requests of the dashboard, timed."""
    from server.reports.periods import week_label

    client = app.test_client()
    signed = client.post(
        "/api/v1/devices",
        json={"username": "sup_province", "password": PASSWORD, "label": "bench"},
    )
    headers = {"Authorization": f"Bearer {signed.get_json()['token']}"}
    last_week = week_label(date.today() - timedelta(weeks=1))

    def coverage() -> None:
        query = {"period": last_week, "region_id": province_id}
        response = client.get("/api/v1/reports/coverage", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["children"]) == args.counties and not body["missing"], body["missing"]

    def trend() -> None:
        query = {"region_id": province_id, "weeks": 12}
        response = client.get("/api/v1/reports/trend", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()

    started = time.perf_counter()
    coverage()  # the first request of the process opens the connections
    first = round((time.perf_counter() - started) * 1000, 1)
    return {
        "API GET coverage, province, first request": first,
        "API GET coverage, province, last week": timed(coverage, args.repeats),
        "API GET trend, province, 12 weeks": timed(trend, args.repeats),
    }


def run_databases(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The province over ``--counties`` SQLite county files (each a copy of one migrated
    file, with its county region, townships and snapshots) and a province file."""
    from server import create_app
    from server.admin.accounts import create_user
    from server.counties import County, Province, province_app
    from server.service import create_server_records
    from server.storage.db import db
    from server.storage.upgrade import upgrade

    folder = workdir / "databases"
    folder.mkdir()
    template = folder / "template.db"
    app = create_app({"DATABASE_URL": f"sqlite:///{template}", "SECRET_KEY": "bench-template"})
    app.instance_path = str(folder / "template")
    upgrade(app)
    with app.app_context():
        db.engine.dispose()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    counties: dict[str, County] = {}
    names: list[tuple[str, str, str]] = []  # region id, name, code
    for c in range(args.counties):
        path = folder / f"county{c}.db"
        shutil.copyfile(template, path)
        county_id = str(uuid.uuid4())
        items = [("region", county_id, _region(None, "county", f"县{c}", f"34{c:04d}"))]
        townships = [str(uuid.uuid4()) for _ in range(TOWNSHIPS)]
        for t, township_id in enumerate(townships):
            data = _region(county_id, "township", f"县{c}镇{t}", f"34{c:04d}{t:02d}")
            items.append(("region", township_id, data))
        county_app = create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "bench-c"})
        with county_app.app_context():
            create_server_records(items, actor=None)
            keep_snapshots([(county_id, townships)], args.weeks, rng)
            db.engine.dispose()
        counties[f"county{c}"] = County(f"county{c}", (f"c{c}.example",), f"sqlite:///{path}")
        names.append((county_id, f"县{c}", f"34{c:04d}"))
    path = folder / "province.db"
    shutil.copyfile(template, path)
    own = County("province", ("sheng.example",), f"sqlite:///{path}", "bench-province-secret")
    config = {"TESTING": True}
    app = province_app(Province(own, tuple(counties)), counties, config, folder / "instance")
    province_id = str(uuid.uuid4())
    items = [("region", province_id, _region(None, "province", "安徽省", "34"))]
    for county_id, name, code in names:
        items.append(("region", county_id, _region(province_id, "county", name, code)))
    with app.app_context():
        create_server_records(items, actor=None)
        create_user("sup_province", PASSWORD, "supervisor", [province_id], [], "省督导")
    loaded = round(time.perf_counter() - started, 1)
    return {
        "backend": f"SQLite, {args.counties} county files",
        "loaded_s": loaded,
        "replayed_ms": None,
        "snapshots": args.counties * args.weeks * (TOWNSHIPS + 2),
        **time_requests(app, province_id, args),
    }


def _replayed(url: str, standby: Any) -> float:
    """How long after a commit on the primary the standby has replayed it, in ms (one small
    commit, polled every millisecond)."""
    from sqlalchemy import create_engine, text

    primary = create_engine(url, isolation_level="AUTOCOMMIT")
    replica = create_engine(standby.url, isolation_level="AUTOCOMMIT")
    with primary.connect() as p, replica.connect() as r:
        p.execute(text("SELECT pg_switch_wal()"))  # start from an idle, caught-up standby
        time.sleep(1)
        started = time.perf_counter()
        lsn = p.execute(text("SELECT txid_current(), pg_current_wal_insert_lsn()")).one()[1]
        while not r.execute(text(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'")).scalar():
            time.sleep(0.001)
        elapsed = (time.perf_counter() - started) * 1000
    primary.dispose()
    replica.dispose()
    return round(elapsed, 1)


def report(args: argparse.Namespace, host: dict[str, str], runs: list[dict[str, Any]]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Province roll-up — {when}",
        "",
        f"`bench/bench_province.py --counties {args.counties} --weeks {args.weeks}"
        f" --repeats {args.repeats}{' --databases' if args.databases else ''}`;"
        f" {host['cpu']}, {host['cores']} cores, {host['memory']};"
        f" Python {host['python']}, SQLite {host['sqlite']}; load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}. Through the HTTP API (Flask test"
        " client, auth and JSON); median of the repeats after a warm-up, in ms.",
        "",
        "| request | " + " | ".join(r["backend"] for r in runs) + " | target |",
        "|---|" + "---:|" * (len(runs) + 1),
    ]
    for name in [key for key in runs[0] if key.startswith("API")]:
        target = f"< {TARGET_MS:.0f}" if "coverage" in name else "—"
        lines.append(f"| {name} | " + " | ".join(str(r[name]) for r in runs) + f" | {target} |")
    for r in runs:
        lines.append(f"- {r['backend']}: {r['snapshots']:,} snapshots loaded in {r['loaded_s']} s")
        if r["replayed_ms"] is not None:
            lines.append(f"  (a commit replayed on the standby after {r['replayed_ms']} ms)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counties", type=int, default=100)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-readme", action="store_true", help="print only")
    parser.add_argument(
        "--replica", action="store_true", help="PostgreSQL also with reports on a hot standby"
    )
    parser.add_argument(
        "--databases", action="store_true", help="also a SQLite file per county (ZOUFANG_COUNTIES)"
    )
    args = parser.parse_args(argv)
    host = machine()
    workdir = Path(tempfile.mkdtemp(prefix="zoufang-bench-province-"))
    runs = []
    try:
        if args.backend in ("sqlite", "both"):
            runs.append(run_backend("SQLite", f"sqlite:///{workdir / 'bench.db'}", workdir, args))
        if args.databases:
            runs.append(run_databases(workdir, args))
        if args.backend in ("postgres", "both"):
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
                if args.replica:
                    standby = pgserver.start_standby(server)
                    try:
                        with admin.connect() as conn:
                            conn.execute(text("CREATE DATABASE zoufang_bench_r"))
                        admin.dispose()
                        url = server.url.rsplit("/", 1)[0] + "/zoufang_bench_r"
                        runs.append(
                            run_backend(
                                "PostgreSQL, reports on a replica", url, workdir, args, standby
                            )  # fmt: skip
                        )
                    finally:
                        standby.stop()
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text_ = report(args, host, runs)
    print(text_)
    if not args.no_readme:
        append_to_readme(text_, PROVINCE_RUNS)
        print(f"appended to {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
