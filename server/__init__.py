"""The Zoufang server: ``create_app`` builds the Flask app (API, PWA, jobs) for one database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from server.http.errors import register_error_handlers
from server.http.jsonio import OrjsonProvider, compress_json
from server.http.request_checks import check_url
from server.http.security import security_headers
from server.storage import replica
from server.storage.blobstore import open_blob_store
from server.storage.db import configure_engine, db, engine_options, normalize_url
from server.storage.store import SqlStore
from sync.hlc import Clock

DEFAULTS: dict[str, Any] = {
    "TIMEZONE": "Asia/Shanghai",
    "MAX_PUSH_OPS": 1000,
    "MAX_PUSH_BYTES": 1024 * 1024,
    "MAX_BLOB_BYTES": 2 * 1024 * 1024,
    # each device's photo upload budget (server/blobs_api.py), generous for real use: a cadre
    # sends maybe 100 photos of ~300 KB a week
    "PHOTOS_PER_HOUR": 100,
    "PHOTO_BYTES_PER_DAY": 200 * 1024 * 1024,
    # where photos' bytes live: database | directory:<path> | s3://<bucket>/<prefix>
    # (server/storage/blobstore.py, docs/deploy.md "Photos")
    "BLOB_STORE": "database",
    "S3_ENDPOINT_URL": None,
    # how long a signed photo URL of the s3 store lets its holder fetch the photo
    "BLOB_URL_SECONDS": 300,
    # days after its upload a photo no visit refers to is deleted (job photo_cleanup)
    "PHOTO_GRACE_DAYS": 30,
    # how many days before the phone recorded it a visit may have happened (CONTRACT §10)
    "BACKDATE_DAYS": 7,
    # reverse proxies in front of the app whose X-Forwarded-For/-Proto to trust (docs/deploy.md)
    "PROXY_HOPS": 0,
    # reports answer from the primary when ZOUFANG_REPORTS_DATABASE_URL lags more (replica.py)
    "REPORTS_MAX_LAG_SECONDS": 300,
    # Argon2id, OWASP's recommended minimum (19 MiB, 2 passes)
    "PASSWORD_HASH": {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1},
}


class ZoufangFlask(Flask):
    json_provider_class = OrjsonProvider


def create_app(
    test_config: dict[str, Any] | None = None, instance_path: str | None = None
) -> Flask:
    """The app of one county's database; ``instance_path`` gives each county of
    ZOUFANG_COUNTIES its own instance folder (server/counties.py)."""
    app = ZoufangFlask(
        __name__, instance_path=instance_path, instance_relative_config=True, static_folder=None
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("ZOUFANG")
    if test_config:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app)
    url = app.config.get("DATABASE_URL") or f"sqlite:///{Path(app.instance_path) / 'zoufang.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_url(url)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["CURSOR_KEY"] = (app.config["SECRET_KEY"] + ":cursor").encode()

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
        app.extensions["zoufang_store"] = SqlStore(db.engine)
        replica.init_app(app, db.engine)
    app.extensions["zoufang_blobs"] = open_blob_store(app.config)
    app.extensions["zoufang_clock"] = Clock()
    from server.admin.forms_service import answer_checker

    app.extensions["zoufang_answer_check"] = answer_checker  # makes each push's checker

    hops = int(app.config["PROXY_HOPS"])
    if hops:  # behind nginx: the client's address and scheme, not the proxy's
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    register_error_handlers(app)
    app.before_request(check_url)
    app.after_request(compress_json)
    app.after_request(security_headers)
    from server.http.api import api

    app.register_blueprint(api)
    from server.http.blobs_api import blobs

    app.register_blueprint(blobs)
    from server.http.reports_api import reports_api

    app.register_blueprint(reports_api)
    from server.http.admin_api import admin

    app.register_blueprint(admin)
    from server.http.forms_admin_api import forms_admin

    app.register_blueprint(forms_admin)
    from server.http.jobs_api import jobs_api

    app.register_blueprint(jobs_api)
    from server.http.notices_api import notices_api

    app.register_blueprint(notices_api)
    from server.http.openapi import openapi

    app.register_blueprint(openapi)
    from server.http.web import web

    app.register_blueprint(web)
    return app


def _instance_secret(app: Flask) -> str:
    """ZOUFANG_SECRET_KEY, or a key generated once and kept in the instance folder."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()
