"""Memory of one ``zoufang serve`` serving 1, 10, 100 counties (ZOUFANG_COUNTIES, docs/scale.md).

    .venv/bin/python bench/bench_counties.py                        # 1, 10 and 100 counties
    .venv/bin/python bench/bench_counties.py --counties 1 10 --workers 1

A demo county (``seed-demo --households 60 --weeks 1``) is written once into a SQLite file and
copied for every county. For each count, ``zoufang serve --workers W --threads 4`` (scheduler
on, as deployed) gets a counties file naming that many counties; every county then meets a
cadre's phone through its own host name: sign in, a full pull, a push of one visit and a
coverage report, then the admin page — so every county's app has opened its database, filled
its caches and started its scheduler in every worker. Memory is read afterwards from
/proc/<pid>/smaps_rollup of gunicorn's master and workers: RSS (pages shared by master and
workers counted once per process) and PSS (shared pages split, so the sum is what the server
really holds). It prints a table for bench/README.md. Everything runs on 127.0.0.1 and the
servers are stopped on the way out.
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


def measure(count: int, template: Path, work: Path, workers: int, cadre: str) -> dict[str, Any]:
    folder = work / f"counties-{count}"
    folder.mkdir()
    lines = []
    for index in range(count):
        database = folder / f"county{index}.db"
        shutil.copy(template, database)
        lines.append(
            f'[counties.county{index}]\nhosts = ["county{index}.bench"]\n'
            f'database_url = "sqlite:///{database}"\n'
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
    return {
        "counties": count,
        "workers": workers,
        "rss_mib": round(rss),
        "pss_mib": round(pss),
        "threads": threads,
        "warm_up_s": round(used_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counties", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-counties-") as temporary:
        work = Path(temporary)
        template = work / "template.db"
        env = {**os.environ, "ZOUFANG_DATABASE_URL": f"sqlite:///{template}"}
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
        cadre = next(u["username"] for u in seeded["users"] if u["role"] == "cadre")
        rows = []
        for count in args.counties:
            rows.append(measure(count, template, work, args.workers, cadre))
            print(json.dumps(rows[-1]), flush=True)
    table = [
        "| counties | RSS, MiB | PSS, MiB | threads | warm-up, s |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['counties']} | {r['rss_mib']} | {r['pss_mib']} | {r['threads']} | "
            f"{r['warm_up_s']} |"
            for r in rows
        ),
    ]
    print("\n".join(table))


if __name__ == "__main__":
    main()
