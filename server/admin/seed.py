"""``zoufang seed-demo``: the generated demo county (server/demo.py) written to the database."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select

from server.admin.accounts import check_password, create_user
from server.admin.demo import generate_demo_county
from server.admin.forms_service import publish_forms
from server.auth import hash_password
from server.service import create_server_records, store
from server.storage.models import Region
from server.timeutil import now


class SeedError(RuntimeError):
    pass


def seed_demo_county(households: int, password: str, weeks: int) -> dict[str, Any]:
    """Seed an empty database; refuse one that already holds regions, or a weak password
    (a demo left running is a real server with real accounts)."""
    check_password(password)
    with store().engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(Region)).scalar():
            raise SeedError("the database already holds data; seed-demo only fills an empty one")
    county = generate_demo_county(households=households, weeks_of_history=weeks, now=now())
    forms_published = publish_forms(actor=None)
    items: list[tuple[str, str, dict[str, Any]]] = []
    items += [("region", r["id"], _without(r, "id")) for r in county.regions]
    items += [("household", h["id"], _without(h, "id")) for h in county.households]
    items += [("person", p["id"], _without(p, "id")) for p in county.people]
    items += [("visit", v["id"], _seeded_visit(v)) for v in county.visits]
    items += [("problem", p["id"], _without(p, "id")) for p in county.problems]
    items += [("measure", m["id"], _without(m, "id")) for m in county.measures]
    create_server_records(items, actor=None, action="demo_seeded")
    shared_hash = hash_password(password)
    users = []
    for user in county.users:
        create_user(
            user["username"],
            password,
            user["role"],
            user["region_ids"],
            user["household_ids"],
            user["name"],
            user.get("phone"),
            password_hash=shared_hash,
            user_id=user["id"],
        )
        users.append(
            {
                "username": user["username"],
                "password": password,
                "role": user["role"],
                "name": user["name"],
                "region_ids": user["region_ids"],
                "household_ids": user["household_ids"],
            }
        )
    counts = Counter(type_ for type_, _, _ in items)
    counts["user"] = len(users)
    counts["form"] = forms_published
    return {"users": users, "counts": dict(counts)}


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _seeded_visit(visit: dict[str, Any]) -> dict[str, Any]:
    """A generated visit as if a phone had pushed it on time, with no clock error."""
    data = _without(visit, "id")
    data.setdefault("device_id", None)
    data["visited_at_effective"] = visit["visited_at"]
    data["received_at"] = visit["visited_at"]
    data.setdefault("void_reason", "录入错误" if visit.get("voided") else None)
    data["review"] = []
    return data
