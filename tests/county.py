"""A small hand-made county for API tests, with names the tests can reason about.

青山县 → 东河镇 → 上村 (households h1..h3) and 下村 (h4); 西岭镇 → 岭村 (h5).
Users: cadre_a and cadre_b cover 上村; cadre_c covers 下村 and, by 包保, h5;
sup_east supervises 东河镇; admin has the county. Every password is "qingshan-2026".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.admin.accounts import create_user
from server.service import create_server_records

PASSWORD = "qingshan-2026"


def uid() -> str:
    return str(uuid.uuid4())


def hlc_at(moment: Any) -> str | None:
    """The hlc of a phone whose clock read ``moment`` (ISO 8601), None if it is not one."""
    try:
        millis = int(datetime.fromisoformat(moment).timestamp() * 1000)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return f"{millis:015d}-0000" if 0 <= millis < 10**15 else None


@dataclass
class Device:
    """A registered device as a test drives it: token, id and its own op counter."""

    client: Any
    device_id: str
    token: str
    user: dict[str, Any]
    seq: int = 0
    cursor: str | None = None
    hlc_ms: int = 1_763_971_200_000

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def op(
        self,
        action: str,
        type_: str,
        id_: str,
        data: dict[str, Any],
        base_version: int | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        self.seq += 1
        self.hlc_ms += 1000
        op = {
            "op_id": uid(),
            "device_seq": self.seq,
            "hlc": f"{self.hlc_ms:015d}-0000",
            "action": action,
            "type": type_,
            "id": id_,
            "base_version": base_version,
            "data": data,
        }
        op.update(overrides)
        return op

    def visit(
        self,
        household_id: str,
        visited_at: str = "2026-11-24T10:00:00+08:00",
        *,
        recorded_at: str | None = None,
        hlc: str | None = None,
        **data: Any,
    ) -> dict[str, Any]:
        """A visit the phone recorded at ``recorded_at`` (its hlc), by default when it happened."""
        body = {"household_id": household_id, "visited_at": visited_at, "mode": "home", **data}
        recorded = hlc or hlc_at(recorded_at or visited_at)
        return self.op("create", "visit", uid(), body, **({"hlc": recorded} if recorded else {}))

    def push(
        self, ops: list[dict[str, Any]], device_time: str | None = None, **headers: str
    ) -> Any:
        body = {
            "device_id": self.device_id,
            "schema": 1,
            "ops": ops,
            "device_time": device_time or datetime.now(UTC).isoformat(),
        }
        return self.client.post("/api/v1/sync/push", json=body, headers={**self.headers, **headers})

    def pull(self, cursor: str | None = None, limit: int | None = None) -> Any:
        query: dict[str, Any] = {}
        if cursor or self.cursor:
            query["cursor"] = cursor or self.cursor
        if limit:
            query["limit"] = limit
        return self.client.get("/api/v1/sync/pull", query_string=query, headers=self.headers)

    def pull_all(self) -> list[dict[str, Any]]:
        """Page until ``more`` is false; the device's view of every change, cursor saved."""
        records: list[dict[str, Any]] = []
        while True:
            response = self.pull()
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            records.extend(body["records"])
            self.cursor = body["cursor"]
            if not body["more"]:
                return records


@dataclass
class County:
    app: Any
    regions: dict[str, str] = field(default_factory=dict)
    households: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)

    def device(self, username: str, label: str = "test phone") -> Device:
        client = self.app.test_client()
        response = client.post(
            "/api/v1/devices", json={"username": username, "password": PASSWORD, "label": label}
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        return Device(client, body["device_id"], body["token"], body["user"])


def build_county(app: Any) -> County:
    county = County(app)
    r = county.regions
    r.update(county=uid(), east=uid(), west=uid(), upper=uid(), lower=uid(), ridge=uid())
    regions = [
        ("county", None, "county", "青山县"),
        ("east", "county", "township", "东河镇"),
        ("west", "county", "township", "西岭镇"),
        ("upper", "east", "village", "上村"),
        ("lower", "east", "village", "下村"),
        ("ridge", "west", "village", "岭村"),
    ]
    items: list[tuple[str, str, dict[str, Any]]] = [
        (
            "region",
            r[key],
            {
                "parent_id": r[parent] if parent else None,
                "level": level,
                "name": name,
                "code": f"code-{key}",
            },
        )
        for key, parent, level, name in regions
    ]
    h = county.households
    for index, village in enumerate(["upper", "upper", "upper", "lower", "ridge"], start=1):
        h[f"h{index}"] = uid()
        items.append(
            (
                "household",
                h[f"h{index}"],
                {
                    "village_id": r[village],
                    "code": f"34182310100{index}",
                    "head_name": f"户主{index}",
                    "address": f"{index}组",
                    "phone": f"1390563120{index}",
                    "category": "脱贫户",
                    "status": "active",
                    "visit_policy": "weekly",
                    "lat": None,
                    "lon": None,
                    "notes": None,
                },
            )
        )
    items.append(
        (
            "person",
            uid(),
            {
                "household_id": h["h1"],
                "name": "汪德明",
                "gender": "男",
                "birth_year": 1941,
                "relation": "户主",
                "flags": ["elderly"],
                "id_number": "341823194110201790",
                "phone": None,
                "notes": None,
            },
        )
    )
    with app.app_context():
        create_server_records(items, actor=None)
        users = county.users
        users["cadre_a"] = create_user("cadre_a", PASSWORD, "cadre", [r["upper"]], [], "甲干部")
        users["cadre_b"] = create_user("cadre_b", PASSWORD, "cadre", [r["upper"]], [], "乙干部")
        users["cadre_c"] = create_user(
            "cadre_c", PASSWORD, "cadre", [r["lower"]], [h["h5"]], "丙干部"
        )
        users["sup_east"] = create_user(
            "sup_east", PASSWORD, "supervisor", [r["east"]], [], "东督导"
        )
        users["admin"] = create_user("admin", PASSWORD, "admin", [r["county"]], [], "管理员")
    return county
