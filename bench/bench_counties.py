"""Memory of one ``zoufang serve`` serving 1, 10, 100 counties (ZOUFANG_COUNTIES, docs/scale.md).

    .venv/bin/python bench/bench_counties.py                        # SQLite: 1, 10, 100 counties
    .venv/bin/python bench/bench_counties.py --backend postgres --counties 1 10 100
    .venv/bin/python bench/bench_counties.py --counties 1 10 --workers 1

A demo county (``seed-demo --households 60 --weeks 1``) is written once into a SQLite file
(copied for every county) or a PostgreSQL template database (``CREATE DATABASE … TEMPLATE``,
in a throwaway cluster this script starts with tests/pgserver.py and removes). For each count,
``zoufang serve --workers W --threads 4`` (scheduler on, as deployed) gets a counties file
naming that many counties; every county then meets a cadre's phone through its own host
name, ``2 × W`` times so that each worker sees it: sign in, a full pull, a push of one visit
and a coverage report, then the admin page. Every county's app has then opened its database,
filled its caches and started its scheduler in every worker. Memory is read afterwards from
/proc/<pid>/smaps_rollup of gunicorn's master and workers: RSS (pages shared by master and
workers counted once per process) and PSS (shared pages split, so the sum is what the server
really holds); on PostgreSQL also the client connections the server keeps open. It prints a
table for bench/README.md. Everything runs on 127.0.0.1 and the servers are stopped on the
way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SECRET = "bench-counties-secret-not-for-production"
PASSWORD = "counties-2026"
CHINA = timezone(timedelta(hours=8))


def zoufang(env: dict[str, str], *args: str) -> str:
    script = Path(sys.executable).with_name("zoufang")
    done = subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"zoufang {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, host: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Host": host, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers)
    with urllib.request.urlopen(request, timeout=300) as response:
        raw = response.read()
        kind = response.headers.get("Content-Type", "")
    return json.loads(raw) if kind.startswith("application/json") else raw


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MiB, as bench_load.py reads them (it needs aiohttp, this does not)."""
    totals = {"Rss:": 0, "Pss:": 0}
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(" ")
                if key in totals:
                    totals[key] += int(rest.split()[0])
    return totals["Rss:"] / 1024, totals["Pss:"] / 1024


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def serving(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    script = Path(sys.executable).with_name("zoufang")
    command = [str(script), "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            with contextlib.suppress(OSError):
                call(port, "health.check", "/healthz")
                break
            time.sleep(0.1)
        yield port, server.pid
    except BaseException:
        print(log.read_text(errors="replace")[-5000:], file=sys.stderr)  # why it failed
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def use_county(port: int, host: str, cadre: str, rounds: int) -> None:
    """What a county's day asks of its app, ``rounds`` times (so each worker sees it)."""
    for _ in range(rounds):
        device = call(
            port,
            host,
            "/api/v1/devices",
            {"username": cadre, "password": PASSWORD, "label": "bench"},
        )
        token = device["token"]
        records = call(port, host, "/api/v1/sync/pull?limit=5000", token=token)["records"]
        household = next(r["id"] for r in records if r["type"] == "household")
        region = next(r["id"] for r in records if r["type"] == "region")
        visited = (datetime.now(CHINA) - timedelta(hours=1)).replace(microsecond=0)
        op = {
            "op_id": str(uuid.uuid4()),
            "device_seq": 1,
            "hlc": f"{int(visited.timestamp() * 1000):015d}-0000",
            "action": "create",
            "type": "visit",
            "id": str(uuid.uuid4()),
            "base_version": None,
            "data": {"household_id": household, "visited_at": visited.isoformat(), "mode": "home"},
        }
        push = {
            "device_id": device["device_id"],
            "device_time": datetime.now(CHINA).isoformat(),
            "schema": 1,
            "ops": [op],
        }
        call(port, host, "/api/v1/sync/push", push, token=token)
        week = visited.strftime("%G-W%V")
        with contextlib.suppress(urllib.error.HTTPError):  # a cadre may not read reports
            call(
                port,
                host,
                f"/api/v1/reports/coverage?period={week}&region_id={region}",
                token=token,
            )
        call(port, host, "/admin")


class Sqlite:
    """County databases as copies of one seeded SQLite file."""

    def __init__(self, work: Path) -> None:
        self.template = work / "template.db"
        self.url = f"sqlite:///{self.template}"

    def county(self, folder: Path, name: str) -> str:
        database = folder / f"{name}.db"
        shutil.copy(self.template, database)
        return f"sqlite:///{database}"

    def connections(self) -> int | None:
        return None

    def stop(self) -> None:
        pass


class Postgres:
    """County databases made from one seeded template database of a throwaway cluster."""

    def __init__(self, work: Path) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from sqlalchemy import create_engine, text

        from tests import pgserver

        self.server = pgserver.start()
        self.text = text
        try:
            self.allow_connections(2000)  # a pool per county per worker: more than 200
            self.admin = create_engine(self.server.url, isolation_level="AUTOCOMMIT")
            self.execute("CREATE DATABASE bench_template")
        except BaseException:
            self.server.stop()
            raise
        self.url = self.server.url.rsplit("/", 1)[0] + "/bench_template"

    def allow_connections(self, limit: int) -> None:
        """Restart the cluster with ``limit`` connections (pgserver starts it with 200)."""
        server = self.server
        base = os.path.dirname(server.data_dir)
        port = urllib.parse.urlsplit(server.url).port
        options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections={limit}"
        pg_ctl = [*server.as_user, server.pg_ctl, "-D", server.data_dir]
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)
        log = os.path.join(base, "log")
        subprocess.run(
            [*pg_ctl, "-o", options, "-l", log, "-w", "-t", "60", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def execute(self, statement: str) -> Any:
        with self.admin.connect() as conn:
            result = conn.execute(self.text(statement))
            return result.scalar() if result.returns_rows else None

    def county(self, folder: Path, name: str) -> str:
        database = f"{folder.name.replace('-', '_')}_{name}"
        self.execute(f"CREATE DATABASE {database} TEMPLATE bench_template")
        return self.url.rsplit("/", 1)[0] + "/" + database

    def connections(self) -> int | None:
        """Client connections to the cluster, this one's aside."""
        return int(
            self.execute(
                "SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )
        )

    def stop(self) -> None:
        self.admin.dispose()
        self.server.stop()


def measure(
    count: int, backend: Sqlite | Postgres, work: Path, workers: int, cadre: str
) -> dict[str, Any]:
    folder = work / f"counties-{count}"
    folder.mkdir()
    lines = []
    for index in range(count):
        url = backend.county(folder, f"county{index}")
        lines.append(
            f'[counties.county{index}]\nhosts = ["county{index}.bench"]\ndatabase_url = "{url}"\n'
        )
    toml = folder / "counties.toml"
    toml.write_text("\n".join(lines), encoding="utf-8")
    env = {**os.environ, "ZOUFANG_COUNTIES": str(toml), "ZOUFANG_SECRET_KEY": SECRET}
    with serving(env, workers, folder / "serve.log") as (port, pid):
        started = time.monotonic()
        for index in range(count):
            use_county(port, f"county{index}.bench", cadre, rounds=2 * workers)
        used_s = time.monotonic() - started
        time.sleep(2)
        pids = [pid, *children(pid)]
        rss, pss = memory_mib(pids)
        threads = sum(threads_of(p) for p in pids)
        connections = backend.connections()
    return {
        "counties": count,
        "workers": workers,
        "rss_mib": round(rss),
        "pss_mib": round(pss),
        "threads": threads,
        "connections": connections,
        "warm_up_s": round(used_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counties", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-counties-") as temporary:
        work = Path(temporary)
        backend = Sqlite(work) if args.backend == "sqlite" else Postgres(work)
        try:
            env = {**os.environ, "ZOUFANG_DATABASE_URL": backend.url}
            env["ZOUFANG_SECRET_KEY"] = SECRET
            env.pop("ZOUFANG_COUNTIES", None)
            seeded = json.loads(
                zoufang(
                    env,
                    "seed-demo",
                    "--households",
                    "60",
                    "--weeks",
                    "1",
                    "--password",
                    PASSWORD,
                    "--json",
                )
            )
            if isinstance(backend, Postgres):  # no connection may stay on a template
                backend.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = 'bench_template'"
                )
            cadre = next(u["username"] for u in seeded["users"] if u["role"] == "cadre")
            rows = []
            for count in args.counties:
                rows.append(measure(count, backend, work, args.workers, cadre))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            backend.stop()
    table = [
        "| counties | RSS, MiB | PSS, MiB | threads | database connections | warm-up, s |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['counties']} | {r['rss_mib']} | {r['pss_mib']} | {r['threads']} | "
            f"{'-' if r['connections'] is None else r['connections']} | {r['warm_up_s']} |"
            for r in rows
        ),
    ]
    print("\n".join(table))


if __name__ == "__main__":
    main()
