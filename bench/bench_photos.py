"""Photos in each store (server/storage/blobstore.py): what an upload and a download cost the
app, and what the photos add to the database.

    .venv/bin/python bench/bench_photos.py --quick          # 50 photos, SQLite, prints only
    .venv/bin/python bench/bench_photos.py                  # 300 photos, SQLite and PostgreSQL,
                                                            # appends to README

``--photos`` distinct photos of ``--kb`` KB (random bytes: a JPEG does not compress) go up
with ``PUT /api/v1/blobs/<sha256>`` and come back with ``GET`` through the Flask test client
(token, budget, scope check included), one after the other, for each store: the database,
a directory, and S3 — moto's server on 127.0.0.1, so its figures say what the app spends on a
signed URL and a PUT over HTTP to a local server, not what a real bucket answers. For S3 the
GET is the 307; the bytes are then fetched from the signed URL (timed separately). PostgreSQL
is a throwaway cluster with ``fsync=off`` (tests/pgserver.py).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.pgserver, tests.county: tests/ is not an installed package

README = ROOT / "bench" / "README.md"
AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def database_bytes(app: Any) -> int:
    """What the photos' table takes in the database (SQLite: the whole file)."""
    from sqlalchemy import text

    from server.service import store

    with app.app_context():
        engine = store().engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return os.path.getsize(engine.url.database)
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_total_relation_size('blobs')")).scalar())


def run(url: str, config: dict[str, Any], photos: int, kb: int, folder: Path) -> dict[str, Any]:
    from server import create_app
    from server.storage.db import db
    from server.storage.upgrade import upgrade
    from tests.county import build_county

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "PASSWORD_HASH": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
            "PHOTOS_PER_HOUR": photos + 1,
            "PHOTO_BYTES_PER_DAY": (photos + 1) * kb * 1024,
            **config,
        }
    )
    app.instance_path = str(folder)
    upgrade(app)
    device = build_county(app).device("cadre_a")
    empty = database_bytes(app)
    bodies = [os.urandom(kb * 1024) for _ in range(photos)]
    names = [hashlib.sha256(body).hexdigest() for body in bodies]
    put_ms, get_ms, fetch_ms = [], [], []
    for body, name in zip(bodies, names, strict=True):
        started = time.perf_counter()
        answer = device.client.put(
            f"/api/v1/blobs/{name}", data=body, content_type="image/jpeg", headers=device.headers
        )
        put_ms.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 201, answer.get_json()
    for body, name in zip(bodies, names, strict=True):
        started = time.perf_counter()
        answer = device.client.get(f"/api/v1/blobs/{name}", headers=device.headers)
        get_ms.append((time.perf_counter() - started) * 1000)
        if answer.status_code == 307:
            started = time.perf_counter()
            with urllib.request.urlopen(answer.headers["Location"]) as fetched:  # noqa: S310
                assert fetched.read() == body
            fetch_ms.append((time.perf_counter() - started) * 1000)
        else:
            assert answer.status_code == 200 and answer.data == body
    grown = database_bytes(app) - empty
    with app.app_context():
        db.engine.dispose()
    return {
        "put": statistics.median(put_ms),
        "put_p95": statistics.quantiles(put_ms, n=20)[-1],
        "get": statistics.median(get_ms),
        "fetch": statistics.median(fetch_ms) if fetch_ms else None,
        "database_mb": grown / 1e6,
    }


def stores(folder: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return {
        "database": {"BLOB_STORE": "database"},
        "directory": {"BLOB_STORE": f"directory:{folder / 'photos'}"},
        "s3 (moto, local)": {"BLOB_STORE": f"s3://{bucket}/bench", "S3_ENDPOINT_URL": endpoint},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--kb", type=int, default=300)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="50 photos, SQLite, prints only")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.backend, args.no_readme = 50, "sqlite", True
    os.environ.update(AWS)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs each request
    from moto.server import ThreadedMotoServer

    from tests import pgserver

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = "http://{}:{}".format(*moto.get_host_and_port())
    postgres = pgserver.start() if args.backend in ("postgres", "both") else None
    rows: list[tuple[str, str, dict[str, Any]]] = []
    try:
        for backend in ("sqlite", "postgres"):
            if args.backend not in (backend, "both"):
                continue
            for label, config in stores(Path(tempfile.mkdtemp()), endpoint).items():
                folder = Path(tempfile.mkdtemp(prefix="zoufang-photos-"))
                if backend == "sqlite":
                    url = f"sqlite:///{folder / 'z.db'}"
                else:
                    assert postgres is not None
                    url = new_postgres_database(postgres.url)
                result = run(url, config, args.photos, args.kb, folder)
                rows.append((backend, label, result))
                print(backend, label, {k: v and round(v, 2) for k, v in result.items()})
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        moto.stop()
        if postgres:
            postgres.stop()
    report = markdown(rows, args)
    print(report)
    if not args.no_readme:
        README.write_text(
            README.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + report, encoding="utf-8"
        )
        print(f"appended to {README.relative_to(ROOT)}")


def new_postgres_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"photos_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def markdown(rows: list[tuple[str, str, dict[str, Any]]], args: argparse.Namespace) -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown",
    )  # fmt: skip
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Photos — {when}",
        "",
        f"`bench/bench_photos.py --photos {args.photos} --kb {args.kb}`; {cpu}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}. Milliseconds per photo through the "
        "Flask test client, median (p95 for PUT); one photo after another. For S3 the app's "
        "GET is the 307 and the bucket serves the bytes (`fetch`); moto on 127.0.0.1 stands in "
        "for the bucket. `database +MB`: what the photos added to the database.",
        "",
        "| database | store | PUT | PUT p95 | GET (app) | fetch from bucket | database +MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for backend, label, r in rows:
        fetch = f"{r['fetch']:.1f}" if r["fetch"] is not None else "—"
        lines.append(
            f"| {backend} | {label} | {r['put']:.1f} | {r['put_p95']:.1f} | {r['get']:.1f} | "
            f"{fetch} | {r['database_mb']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
