"""``zoufang serve``: the app under gunicorn, several worker processes with a few threads each.

gunicorn rather than Flask's development server: real process management, worker restarts,
timeouts and graceful reloads. The app is built once in the master (``preload_app``) so the
instance secret and the schema check happen before any worker forks.
"""

from __future__ import annotations

import gc
from typing import Any

import gunicorn.util
import orjson
from flask import Flask
from gunicorn.app.base import BaseApplication

from server.http.errors import MESSAGES
from server.jobs import start_scheduler
from server.storage.db import checkpoint_in_background, db

#: the longest request line gunicorn takes (its maximum): a pull with a cursor of the 4,096
#: characters the contract allows, and its other parameters, fits with room to spare
LIMIT_REQUEST_LINE = 8190
#: one header's size: a bearer token or a forwarded-for chain is far below
LIMIT_REQUEST_FIELD_SIZE = 8190
#: gunicorn's default access log line
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
#: the collector's first threshold in a server (settle_collector); Python's default is 700
YOUNG_COLLECTION_EVERY = 50_000


def _json_error(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's answer to a request it refuses before the app sees it (a request line or a
    header over the limits, a malformed request), in the contract's error shape instead of
    its HTML page. The request could not be read, so it is ``invalid_request`` (400) with
    the limits in ``details``; a refusal that is not the client's keeps its status."""
    code, status = ("invalid_request", 400) if 400 <= status < 500 else ("internal_error", 500)
    body = orjson.dumps(
        {
            "error": {
                "code": code,
                "message": MESSAGES[code][0],
                "details": {
                    "reason": f"{reason}: {message}"[:300],
                    "max_request_line_bytes": LIMIT_REQUEST_LINE,
                    "max_header_bytes": LIMIT_REQUEST_FIELD_SIZE,
                },
            }
        }
    )
    head = (
        f"HTTP/1.1 {status} {'Bad Request' if status == 400 else 'Internal Server Error'}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin1") + body)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def run(
    application: Any,
    apps: list[Flask],
    host: str,
    port: int,
    workers: int,
    threads: int,
    scheduler: bool,
) -> None:
    """Serve ``application``: one county's app, or the dispatcher in front of ``apps``, one
    app per county (server/counties.py)."""

    def post_fork(_server: Any, _worker: Any) -> None:
        """A worker must not share the master's database connections."""
        for app in apps:
            with app.app_context():
                db.engine.dispose(close=False)

    def post_worker_init(_worker: Any) -> None:
        """Each worker checkpoints its counties' SQLite files in a thread of its own
        (server/storage/db.py) and runs a scheduler per county; the lock in the county's
        database lets one process run each of its jobs (server/jobs.py). Not in post_fork:
        until the worker has its signal handlers, a SIGTERM is lost and the worker lingers
        until the graceful timeout."""
        for app in apps:
            with app.app_context():
                checkpoint_in_background(db.engine)
            if app.config["RUN_SCHEDULER"]:
                start_scheduler(app)

    for app in apps:
        app.config["RUN_SCHEDULER"] = scheduler
    gunicorn.util.write_error = _json_error  # gunicorn's workers call it by this name
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "preload_app": True,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        # the control socket's default path is per user, not per server: two `zoufang serve`
        # on one host would fight over it, and nothing here uses it
        "control_socket_disable": True,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
    }
    if not isinstance(application, Flask):  # several counties: each line names its host
        options["access_log_format"] = ACCESS_LOG_FORMAT + ' "%({host}i)s"'
    settle_collector()
    _Gunicorn(application, options).run()


def settle_collector() -> None:
    """The garbage collector of a server about to fork its workers.

    The apps were built before the workers fork (preload_app) and live as long as the process:
    frozen, they are out of the collector's reach, so a full collection in a worker no longer
    walks them all (~8 µs CPU per pushed visit of ~85, bench/profile_push.py) and no longer
    writes to their pages, which the workers then keep sharing with the master.

    A push of 500 visits holds some 50,000 objects until it answers; at Python's default of a
    young collection every 700, each was walked again and again while it lived, about 4 % of
    a push's time. Memory is freed by reference counting all the same: only cyclic garbage
    waits for the collector, and a request makes little of it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 20, 20)
