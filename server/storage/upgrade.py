"""``zoufang db upgrade``: Alembic migrations, run from the package without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask

from server.storage.db import db

SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return config


def upgrade(app: Flask, revision: str = "head") -> None:
    with app.app_context(), db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def autogenerate(app: Flask, message: str) -> None:
    """For developers: write a new migration from the difference between models and database."""
    with app.app_context(), db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
