"""A real `zoufang serve` that can be killed, and phones that keep trying.

Used by the fault-injection tests: traffic goes to 127.0.0.1 only, every loop is bounded in
count and time, and everything stops by itself.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`zoufang serve` in its own process group, so SIGKILL takes master and workers at once."""

    def __init__(self, database_url: str, workers: int = 2) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "ZOUFANG_DATABASE_URL": database_url,
            "ZOUFANG_SECRET_KEY": "fault-test",
        }
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        command = [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--threads",
            "4",
            "--no-scheduler",
        ]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        self.kill()


def call(
    url: str, method: str, body: Any = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@dataclass
class Phone:
    """A phone with an outbox: it records visits, pushes until acked, pulls to converge."""

    server: Server
    username: str
    password: str
    households: list[str] = field(default_factory=list)
    device_id: str = ""
    token: str = ""
    outbox: list[dict[str, Any]] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)  # op_id → version
    created: set[str] = field(default_factory=set)  # ids of the visits this phone recorded
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cursor: str | None = None
    seq: int = 0
    errors: int = 0

    def sign_in(self) -> None:
        credentials = {"username": self.username, "password": self.password, "label": "fault"}
        status, body = call(self.server.url + "/api/v1/devices", "POST", credentials)
        assert status == 201, body
        self.device_id, self.token = body["device_id"], body["token"]

    def record_visits(self, count: int) -> None:
        for _ in range(count):
            self.seq += 1
            household = self.households[self.seq % len(self.households)]
            visit_id = str(uuid.uuid4())
            self.created.add(visit_id)
            self.outbox.append(
                {
                    "op_id": str(uuid.uuid4()),
                    "device_seq": self.seq,
                    "hlc": f"{int(time.time() * 1000):015d}-0000",
                    "action": "create",
                    "type": "visit",
                    "id": visit_id,
                    "base_version": None,
                    "data": {
                        "household_id": household,
                        "mode": "home",
                        "visited_at": datetime.now(UTC).isoformat(),
                    },
                }
            )

    def push_once(self, batch: int = 10) -> None:
        """One push attempt; whatever the server acked leaves the outbox."""
        if not self.outbox:
            return
        body = {
            "device_id": self.device_id,
            "ops": self.outbox[:batch],
            "device_time": datetime.now(UTC).isoformat(),
        }
        status, answer = call(self.server.url + "/api/v1/sync/push", "POST", body, self.token)
        if status >= 500:
            raise ConnectionError(f"server error {status}: {answer}")
        assert status == 200, answer
        acked = {r["op_id"]: r for r in answer["results"] if r["status"] != "gap"}
        for op_id, result in acked.items():
            assert result["status"] in ("applied", "duplicate"), result
            self.acked[op_id] = result["version"]
        self.outbox = [op for op in self.outbox if op["op_id"] not in acked]

    def pull_once(self) -> bool:
        """One page; True when the phone is at the head."""
        url = self.server.url + "/api/v1/sync/pull?limit=50"
        if self.cursor:
            url += "&cursor=" + self.cursor
        status, answer = call(url, "GET", token=self.token)
        if status >= 500:
            raise ConnectionError(f"server error {status}: {answer}")
        assert status == 200, answer
        for record in answer["records"]:
            key = (record["type"], record["id"])
            if record["deleted"]:
                self.records.pop(key, None)
            else:
                self.records[key] = record
        self.cursor = answer["cursor"]
        return not answer["more"]

    def work(self, until: float, stop: threading.Event) -> None:
        """Push and pull until the outbox is empty and the phone is at the head."""
        while time.monotonic() < until:
            try:
                self.push_once()
                at_head = self.pull_once()
                if stop.is_set() and not self.outbox and at_head:
                    return
            except (OSError, http.client.HTTPException):  # the server died mid-answer
                self.errors += 1
                time.sleep(0.05)
        raise AssertionError(f"{self.username} did not finish in time")
