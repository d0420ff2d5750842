"""Server CPU per pushed visit, in one process, and where it goes (cProfile).

    .venv/bin/python bench/profile_push.py                      # SQLite, 10 pushes of 500
    .venv/bin/python bench/profile_push.py --backend postgres   # a throwaway PostgreSQL
    .venv/bin/python bench/profile_push.py --profile 25         # and the top 25 functions
    .venv/bin/python bench/profile_push.py --no-freeze          # without wsgi.settle_collector()

The demo county (`zoufang seed-demo --weeks 0`) in a fresh database, one cadre's phone, and
pushes of 500 visits as the PWA sends them (bench-peers' shape: the weekly form's 12 answers,
people seen, a location, a note) through the Flask test client: the whole request path but
HTTP and gunicorn. CPU is this process's (`time.process_time`), so on PostgreSQL the database
backend's own CPU is not in it. Bench-peers measures throughput; this says what to change.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_sync import ANSWER_KEYS  # noqa: E402  (the weekly form's answers)

PASSWORD = "Profile-push-2026!"


def prepare(url: str, workdir: Path) -> dict:
    env = {**os.environ, "ZOUFANG_DATABASE_URL": url, "ZOUFANG_SECRET_KEY": "profile"}
    exe = str(Path(sys.executable).parent / "zoufang")
    subprocess.run([exe, "db", "upgrade"], env=env, cwd=workdir, check=True, capture_output=True)
    seeded = subprocess.run(
        [exe, "seed-demo", "--json", "--weeks", "0", "--password", PASSWORD],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.JSONDecoder().raw_decode(seeded[seeded.index("{") :])[0]


def households_and_people(records: list[dict]) -> tuple[list[str], dict[str, list[str]]]:
    """What a phone's first pull gave it: its households' ids, and their people's by household."""
    households = [r["id"] for r in records if r["type"] == "household" and not r["deleted"]]
    people: dict[str, list[str]] = {}
    for r in records:
        if r["type"] == "person":
            people.setdefault(r["data"]["household_id"], []).append(r["id"])
    return households, people


def bodies(device: dict, households: list, people: dict, pushes: int, size: int) -> list[bytes]:
    rng = random.Random(42)
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
    out, seq = [], 0
    for _ in range(pushes):
        ops = []
        for _ in range(size):
            seq += 1
            household = households[rng.randrange(len(households))]
            home = rng.random() < 0.8
            data = {
                "household_id": household,
                "visited_at": (now - dt.timedelta(seconds=rng.randrange(3 * 86400))).isoformat(
                    timespec="seconds"
                ),
                "mode": "home" if home else "phone",
                "form_id": "weekly_visit",
                "form_version": 1,
                "answers": {k: k.endswith("_ok") or rng.random() < 0.7 for k in ANSWER_KEYS},
                "people_seen": people.get(household, [])[:1],
                "location": (
                    {"lat": 30 + rng.random(), "lon": 104 + rng.random(), "accuracy": 12}
                    if home
                    else None
                ),
                "notes": "老人身体状况良好，已提醒按时服药",
            }
            ops.append(
                {
                    "op_id": str(uuid.uuid4()),
                    "device_seq": seq,
                    "hlc": f"{int(time.time() * 1000):015d}-0000",
                    "action": "create",
                    "type": "visit",
                    "id": str(uuid.uuid4()),
                    "base_version": None,
                    "data": data,
                }
            )
        body = {
            "device_id": device["device_id"],
            "device_time": now.isoformat(),
            "schema": 1,
            "ops": ops,
        }
        out.append(json.dumps(body, ensure_ascii=False).encode())
    return out


def run(url: str, workdir: Path, pushes: int, size: int, top: int, freeze: bool = True) -> None:
    from server import create_app
    from server.wsgi import settle_collector

    seed = prepare(url, workdir)
    cadre = next(u for u in seed["users"] if u["role"] == "cadre")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "profile"})
    client = app.test_client()
    reg = client.post(
        "/api/v1/devices",
        json={"username": cadre["username"], "password": PASSWORD, "label": "profile"},
    ).get_json()
    headers = {"Authorization": "Bearer " + reg["token"], "Content-Type": "application/json"}
    records, cursor = [], None
    while True:
        query = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/sync/pull", query_string=query, headers=headers).get_json()
        records += page["records"]
        cursor = page["cursor"]
        if not page["more"]:
            break
    prepared = bodies(reg, *households_and_people(records), pushes + 1, size)
    warm = client.post("/api/v1/sync/push", data=prepared[0], headers=headers)  # caches, pool
    assert warm.status_code == 200, warm.get_json()
    if freeze:  # as `zoufang serve` does before its workers fork
        settle_collector()
    profile = cProfile.Profile() if top else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    for body in prepared[1:]:
        answer = client.post("/api/v1/sync/push", data=body, headers=headers)
        results = answer.get_json()["results"]
        assert {r["status"] for r in results} == {"applied"}, results[:2]
    if profile:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    visits = pushes * size
    print(
        f"{visits} visits in pushes of {size}: {cpu / visits * 1e6:.1f} µs CPU per visit"
        f" ({wall / visits * 1e6:.1f} µs wall){' under cProfile' if profile else ''}"
    )
    while True:  # to the head: the pulls below are empty
        query = {"limit": 1000, "cursor": cursor}
        page = client.get("/api/v1/sync/pull", query_string=query, headers=headers).get_json()
        cursor = page["cursor"]
        if not page["more"]:
            break
    empty = []
    pulls = cProfile.Profile() if top else None
    for _ in range(200):
        started = time.perf_counter()
        if pulls:
            pulls.enable()
        client.get("/api/v1/sync/pull", query_string={"cursor": cursor}, headers=headers)
        if pulls:
            pulls.disable()
        empty.append(time.perf_counter() - started)
    empty.sort()
    print(f"empty pull in-process: median {empty[100] * 1000:.2f} ms")
    if pulls:
        print("200 empty pulls, by their own time:")
        pstats.Stats(pulls).sort_stats("tottime").print_stats(top)
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(top)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--profile", type=int, default=0, metavar="TOP")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the app in the collector's reach"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoufang-profile-") as tmp:
        workdir = Path(tmp)
        if args.backend == "sqlite":
            url = f"sqlite:///{workdir / 'zoufang.db'}"
            run(url, workdir, args.pushes, args.size, args.profile, not args.no_freeze)
            return
        from tests import pgserver

        server = pgserver.start()
        try:
            run(server.url, workdir, args.pushes, args.size, args.profile, not args.no_freeze)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
