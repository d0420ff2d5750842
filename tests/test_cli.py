"""The command line of CONTRACT §1, run as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from server.cli import main


def run(args, database, stdin=None):
    env = {"ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "cli-test"}
    result = CliRunner(env=env).invoke(main, args, input=stdin, catch_exceptions=False)
    return result


def test_db_upgrade_creates_the_schema_and_is_repeatable(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    assert run(["db", "upgrade"], database).exit_code == 0
    again = run(["db", "upgrade"], database)
    assert again.exit_code == 0 and "head" in again.output


def test_seed_demo_prints_users_and_counts_as_json(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    result = run(
        ["seed-demo", "--households", "60", "--password", "demo-pass-1", "--json"], database
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    roles = {u["role"] for u in summary["users"]}
    assert roles == {"admin", "supervisor", "cadre"}
    assert all(set(u) >= {"username", "password", "role", "region_ids"} for u in summary["users"])
    assert summary["counts"]["household"] == 60
    assert summary["counts"]["visit"] > 0 and summary["counts"]["form"] >= 2


def test_seed_demo_refuses_a_database_with_data_unless_asked_to_skip(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    run(["seed-demo", "--households", "10"], database)
    assert run(["seed-demo", "--households", "10"], database).exit_code == 1
    assert run(["seed-demo", "--households", "10", "--if-empty"], database).exit_code == 0


def test_users_add_reads_the_password_from_stdin_and_the_user_can_sign_in(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    summary = json.loads(run(["seed-demo", "--households", "10", "--json"], database).output)
    village = next(u for u in summary["users"] if u["role"] == "cadre")["region_ids"][0]
    result = run(
        ["users", "add", "newcadre", "--role", "cadre", "--region", village, "--password-stdin"],
        database,
        stdin="a-long-password\n",
    )
    assert result.exit_code == 0, result.output
    from tests.conftest import app_for

    client = app_for(database, tmp_path).test_client()
    response = client.post(
        "/api/v1/devices", json={"username": "newcadre", "password": "a-long-password"}
    )
    assert response.status_code == 201
    assert response.get_json()["user"]["region_ids"] == [village]


def test_users_add_refuses_an_unknown_region(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    run(["db", "upgrade"], database)
    result = run(
        ["users", "add", "x1", "--role", "cadre", "--region", "nowhere", "--password-stdin"],
        database,
        stdin="a-long-password\n",
    )
    assert result.exit_code == 1 and "unknown region" in result.output


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_a_real_wsgi_server_that_answers(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    run(["db", "upgrade"], database)
    port = free_port()
    env = {**os.environ, "ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "serve-test"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-scheduler",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body, server_header = json.load(r), r.headers.get("Server", "")
                break
            except OSError:
                time.sleep(0.1)
        assert body == {"status": "ok"}
        assert "gunicorn" in server_header
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_server_settles_its_collector_before_its_workers_fork():
    """The apps are frozen out of the collector's reach, and young collections come every
    50,000 objects, not Python's 700 (server/wsgi.py: ~4 % of a push). In a process of its own:
    freezing would touch this one's objects."""
    probe = (
        "import gc\n"
        "from server.wsgi import YOUNG_COLLECTION_EVERY, settle_collector\n"
        "assert gc.get_threshold()[0] == 700\n"
        "settle_collector()\n"
        "print(gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY, gc.get_freeze_count() > 1000)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "True"]
