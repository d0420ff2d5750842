"""``zoufang serve``: the app under gunicorn, several worker processes with a few threads each.

gunicorn rather than Flask's development server: real process management, worker restarts,
timeouts and graceful reloads. The app is built once in the master (``preload_app``) so the
instance secret and the schema check happen before any worker forks.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from server import create_app
from server.db import db
from server.jobs import start_scheduler


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


def run(host: str, port: int, workers: int, threads: int, scheduler: bool) -> None:
    app = create_app()

    def post_fork(_server: Any, _worker: Any) -> None:
        """A worker must not share the master's database connections."""
        with app.app_context():
            db.engine.dispose(close=False)

    def post_worker_init(_worker: Any) -> None:
        """Each worker runs a scheduler; the database lock lets one process run each job
        (server/jobs.py). Not in post_fork: until the worker has its signal handlers, a
        SIGTERM is lost and the worker lingers until the graceful timeout."""
        if app.config["RUN_SCHEDULER"]:
            start_scheduler(app)

    app.config["RUN_SCHEDULER"] = scheduler
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
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
    }
    _Gunicorn(app, options).run()
