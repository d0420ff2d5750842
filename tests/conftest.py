"""Fixtures: real databases (a SQLite file, a PostgreSQL server), the app, a small county.

PostgreSQL: ZOUFANG_TEST_POSTGRES_URL if set, else a throwaway cluster started here. A test
that needs it skips with the reason when neither works — except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from forms import parse_expression
from server import create_app
from server.admin.forms_service import publish_forms
from server.storage.db import configure_engine, db, engine_options, normalize_url
from server.storage.upgrade import upgrade
from tests import pgserver
from tests.county import County, build_county

IN_CI = os.environ.get("CI") == "true"
CHEAP_HASH = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start without parsed expressions: mutmut (bench/mutation.py) runs each mutant in a fork
    of one process that already ran the tests, and expressions cached there would hide a
    mutant of the parser."""
    parse_expression.cache_clear()


def app_for(url: str, instance: Path, **extra: Any) -> Any:
    config = {
        "TESTING": True,
        "DATABASE_URL": url,
        "SECRET_KEY": "test-secret",
        "PASSWORD_HASH": CHEAP_HASH,
        **extra,
    }
    app = create_app(config)
    app.instance_path = str(instance)
    return app


def _dispose(app: Any) -> None:
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    url = os.environ.get("ZOUFANG_TEST_POSTGRES_URL")
    if url:
        yield normalize_url(url)
        return
    try:
        server = pgserver.start()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL and it could not start: {exc}")
        pytest.skip(f"PostgreSQL unavailable here: {exc}")
    yield server.url
    server.stop()


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _admin(url: str, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"zoufang_template_{uuid.uuid4().hex[:8]}"
    _admin(postgres_admin_url, f"CREATE DATABASE {name}")
    app = app_for(_with_database(postgres_admin_url, name), tmp_path_factory.mktemp("pg"))
    upgrade(app)
    _dispose(app)
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.db"
    app = app_for(f"sqlite:///{path}", folder)
    upgrade(app)
    _dispose(app)  # closing the last connection checkpoints the WAL into the file we copy
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "zoufang.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    name = f"zoufang_test_{uuid.uuid4().hex[:10]}"
    _admin(postgres_admin_url, f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    yield _with_database(postgres_admin_url, name)
    _admin(postgres_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def sql_engine(url: str) -> Engine:
    url = normalize_url(url)
    engine = create_engine(url, **engine_options(url))
    configure_engine(engine)
    return engine


def migrated_app(url: str, instance: Path) -> Any:
    """An app on a database as ``zoufang db upgrade`` leaves it: schema and shipped forms.
    (The URL fixtures are the schema alone, as the store contract suite needs.)"""
    application = app_for(url, instance)
    with application.app_context():
        publish_forms(actor=None)
    return application


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    application = migrated_app(sqlite_url, tmp_path)
    yield application
    _dispose(application)


@pytest.fixture
def any_app(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """The app on SQLite and on PostgreSQL."""
    application = migrated_app(database_url, tmp_path)
    yield application
    _dispose(application)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def county(app: Any) -> County:
    return build_county(app)


@pytest.fixture
def any_county(any_app: Any) -> County:
    return build_county(any_app)
