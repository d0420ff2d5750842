"""Roster import time: a generated county roster of 10,000 person rows, imported into an empty
database, imported again unchanged, and imported a third time with one person in ten changed.

    .venv/bin/python bench/bench_roster.py                  # SQLite in a temporary folder
    .venv/bin/python bench/bench_roster.py --rows 2000 --no-readme
    .venv/bin/python bench/bench_roster.py --postgres       # a throwaway local cluster
    .venv/bin/python bench/bench_roster.py --database-url postgresql://…/empty_db

The target (issue 6) is under 10 s for the first import of 10,000 rows; it is measured here,
not asserted in the tests. Each run appends a short table to bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import create_app  # noqa: E402
from server.admin.demo import generate_demo_county  # noqa: E402
from server.admin.roster import FLAG_COLUMNS, import_roster  # noqa: E402
from server.storage.upgrade import upgrade  # noqa: E402

README = ROOT / "bench" / "README.md"
TARGET_S = 10.0
HEADER = [
    "户编码",
    "户主姓名",
    "乡镇",
    "村",
    "人员姓名",
    "与户主关系",
    "身份证号",
    "性别",
    "出生年份",
    "类别",
    *FLAG_COLUMNS,
    "联系电话",
    "备注",
]
FLAG_OF = {flag: column for column, flag in FLAG_COLUMNS.items()}


def roster_rows(rows: int) -> list[dict[str, Any]]:
    """``rows`` person rows of a generated county (server/demo.py), as a roster has them."""
    county = generate_demo_county(households=rows // 2 + 10, weeks_of_history=0)
    regions = {r["id"]: r for r in county.regions}
    households = {h["id"]: h for h in county.households}
    out = []
    for person in county.people[:rows]:
        household = households[person["household_id"]]
        village = regions[household["village_id"]]
        cells = {
            "户编码": household["code"],
            "户主姓名": household["head_name"],
            "乡镇": regions[village["parent_id"]]["name"],
            "村": village["name"],
            "人员姓名": person["name"],
            "与户主关系": person["relation"],
            "身份证号": person["id_number"] or "",
            "性别": person["gender"] or "",
            "出生年份": str(person["birth_year"] or ""),
            "类别": household["category"] or "",
            "联系电话": household["phone"] or "",
            "备注": person["notes"] or "",
        }
        cells.update({FLAG_OF[f]: "是" for f in person["flags"]})
        out.append(cells)
    return out


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows([[cells.get(name, "") for name in HEADER] for cells in rows])
    return buffer.getvalue().encode("utf-8-sig")


def one_in_ten_changed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tenth person gets 病 toggled and a new 备注: a month's roster maintenance."""
    changed = [dict(cells) for cells in rows]
    for cells in changed[::10]:
        cells["病"] = "" if cells.get("病") == "是" else "是"
        cells["备注"] = "2026 年复核"
    return changed


def timed(app: Any, content: bytes, label: str) -> dict[str, Any]:
    started = time.perf_counter()
    with app.app_context():
        summary = import_roster(content, county="青溪县", source=label)
    seconds = time.perf_counter() - started
    print(
        f"{label:<28} {seconds:6.2f} s   households {summary['households']}  "
        f"people {summary['people']}"
    )
    return {"label": label, "seconds": seconds, "summary": summary}


def run(rows: int, database_url: str | None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="zoufang-bench-roster-") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-roster-secret"})
        app.instance_path = folder
        upgrade(app)
        data = roster_rows(rows)
        print(
            f"{len(data)} rows, {len({r['户编码'] for r in data})} households, {url.split(':')[0]}"
        )
        results = [
            timed(app, to_csv(data), "first import"),
            timed(app, to_csv(data), "same file again"),
            timed(app, to_csv(one_in_ten_changed(data)), "one person in ten changed"),
        ]
        with app.app_context():
            from server.storage.db import db

            db.engine.dispose()
    return results


def readme_entry(rows: int, database: str, results: list[dict[str, Any]]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Roster import, {rows:,} rows, {database} — {when}",
        "",
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}; target: first import under {TARGET_S:.0f} s.",
        "",
        "| step | seconds | households c/u/= | people c/u/= |",
        "|---|---:|---|---|",
    ]
    for result in results:
        h, p = result["summary"]["households"], result["summary"]["people"]
        lines.append(
            f"| {result['label']} | {result['seconds']:.2f} | "
            f"{h['created']}/{h['updated']}/{h['unchanged']} | "
            f"{p['created']}/{p['updated']}/{p['unchanged']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    parser.add_argument(
        "--postgres", action="store_true", help="a throwaway cluster (tests/pgserver.py, fsync off)"
    )
    parser.add_argument("--no-readme", action="store_true", help="print only")
    args = parser.parse_args()
    server = None
    if args.postgres:
        from tests import pgserver

        server = pgserver.start()
        args.database_url = server.url
    try:
        results = run(args.rows, args.database_url)
    finally:
        if server is not None:
            server.stop()
    first = results[0]["seconds"]
    verdict = "within" if first < TARGET_S else "OVER"
    print(f"first import {first:.2f} s: {verdict} the {TARGET_S:.0f} s target")
    if not args.no_readme:
        database = "SQLite"
        if (args.database_url or "").startswith("postgres"):
            database = "PostgreSQL (throwaway cluster, fsync off)" if server else "PostgreSQL"
        existing = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
        entry = readme_entry(args.rows, database, results)
        README.write_text(existing.rstrip("\n") + "\n\n" + entry, encoding="utf-8")
        print(f"appended to {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
