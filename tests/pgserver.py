"""A throwaway PostgreSQL server for the test suite, on 127.0.0.1, run as an unprivileged user.

Used when ZOUFANG_TEST_POSTGRES_URL is not set: the suite then starts its own cluster with
the machine's ``initdb``/``pg_ctl`` and stops it at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass
class PostgresServer:
    url: str
    data_dir: str
    pg_ctl: str
    as_user: list[str]

    def restart(self) -> None:
        """An immediate (crash-like) restart: no checkpoint, recovery from the WAL on start."""
        log = os.path.join(os.path.dirname(self.data_dir), "log")
        command = [
            *self.as_user,
            self.pg_ctl,
            "-D",
            self.data_dir,
            "-l",
            log,
            "-m",
            "immediate",
            "-w",
            "-t",
            "60",
            "restart",
        ]
        # no pipes: the restarted server would inherit them and pg_ctl's output never ends
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def halt(self) -> None:
        """Stop the server, keeping its data directory."""
        subprocess.run(
            [*self.as_user, self.pg_ctl, "-D", self.data_dir, "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(os.path.dirname(self.data_dir), ignore_errors=True)


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start() -> PostgresServer:
    """Start a cluster; raises RuntimeError with the reason when this machine cannot."""
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("initdb/pg_ctl not found (install PostgreSQL server binaries)")
    base = tempfile.mkdtemp(prefix="zoufang-pg-")
    data = os.path.join(base, "data")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError("running as root and there is no 'postgres' user") from exc
        os.chown(base, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    init = subprocess.run(
        [
            *as_user,
            initdb,
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        raise RuntimeError("initdb failed: " + init.stderr[-2000:])
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=200"
    started = subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            data,
            "-o",
            options,
            "-l",
            os.path.join(base, "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise RuntimeError("pg_ctl start failed: " + started.stderr[-2000:])
    return PostgresServer(
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", data, pg_ctl, as_user
    )


def start_standby(primary: PostgresServer) -> PostgresServer:
    """A hot standby of ``primary`` streaming from it (``pg_basebackup -R``), on its own port,
    run as the same user. The primary must allow replication from 127.0.0.1: ``start`` leaves
    initdb's pg_hba.conf, whose ``host replication all 127.0.0.1/32 trust`` line does, and
    PostgreSQL's defaults (wal_level=replica, max_wal_senders=10) stream."""
    basebackup = find_binary("pg_basebackup")
    if not basebackup:
        raise RuntimeError("pg_basebackup not found (install PostgreSQL server binaries)")
    base = tempfile.mkdtemp(prefix="zoufang-standby-")
    data = os.path.join(base, "data")
    if primary.as_user:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
    host, port = primary.url.split("@", 1)[1].split("/", 1)[0].split(":")
    copied = subprocess.run(
        [*primary.as_user, basebackup, "-h", host, "-p", port, "-U", "postgres"]
        + ["-D", data, "-R", "-X", "stream", "--no-sync", "-c", "fast"],
        capture_output=True,
        text=True,
    )
    if copied.returncode != 0:
        raise RuntimeError("pg_basebackup failed: " + copied.stderr[-2000:])
    own_port = free_port()
    options = f"-h 127.0.0.1 -p {own_port} -k {base} -c hot_standby=on -c max_connections=200"
    started = subprocess.run(
        [*primary.as_user, primary.pg_ctl, "-D", data, "-o", options]
        + ["-l", os.path.join(base, "log"), "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise RuntimeError("pg_ctl start (standby) failed: " + started.stderr[-2000:])
    url = f"postgresql+psycopg://postgres@127.0.0.1:{own_port}/postgres"
    return PostgresServer(url, data, primary.pg_ctl, primary.as_user)
