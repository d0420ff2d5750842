"""The ``zoufang`` command line (CONTRACT §1)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask

from server import create_app
from server.db import db as database


def _app() -> Flask:
    """The app for one command; its database connections close when the command ends."""
    app = create_app()

    def dispose() -> None:
        with app.app_context():
            database.engine.dispose()

    click.get_current_context().call_on_close(dispose)
    return app


@click.group()
def main() -> None:
    """Zoufang (走访): household visit records, offline-first."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema of ZOUFANG_DATABASE_URL."""
    from server.upgrade import upgrade

    app = _app()
    upgrade(app, revision)
    click.echo(
        f"database at revision {revision}: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}"
    )


@main.command("seed-demo")
@click.option("--households", default=240, show_default=True, type=click.IntRange(1, 200_000))
@click.option(
    "--password", default="zoufang2026", show_default=True, help="the password of every demo user"
)
@click.option(
    "--weeks",
    default=4,
    show_default=True,
    type=click.IntRange(0, 60),
    help="weeks of visit history",
)
@click.option("--json", "as_json", is_flag=True, help="print users and counts as JSON")
@click.option("--if-empty", is_flag=True, help="do nothing, successfully, if data exists")
def seed_demo(households: int, password: str, weeks: int, as_json: bool, if_empty: bool) -> None:
    """A realistic demo county: townships, villages, households, cadres, visits, problems."""
    from server.seed import SeedError, seed_demo_county
    from server.upgrade import upgrade

    app = _app()
    upgrade(app)
    try:
        with app.app_context():
            summary = seed_demo_county(households=households, password=password, weeks=weeks)
    except SeedError as exc:
        if if_empty:
            click.echo(f"not seeded: {exc}")
            return
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
        click.echo(f"demo county seeded: {counts}")
        click.echo(f"sign in as admin / county / township1 / cadre001 … with password {password!r}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-scheduler", is_flag=True, help="do not run the scheduled jobs here")
def serve(host: str, port: int, workers: int, threads: int, no_scheduler: bool) -> None:
    """Serve the PWA and the API with gunicorn (a production WSGI server)."""
    from server.wsgi import run

    run(host, port, workers, threads, scheduler=not no_scheduler)


@main.group()
def users() -> None:
    """User accounts."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["cadre", "supervisor", "admin"]), required=True)
@click.option("--region", "regions", multiple=True, help="a region id (repeatable)")
@click.option("--household", "households", multiple=True, help="a household id (包保, repeatable)")
@click.option("--name", default=None, help="display name (default: the username)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_add(
    username: str,
    role: str,
    regions: tuple[str, ...],
    households: tuple[str, ...],
    name: str | None,
    password_stdin: bool,
) -> None:
    """Add a user scoped to regions and households."""
    from server.accounts import AccountError, create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    app = _app()
    try:
        with app.app_context():
            user_id = create_user(
                username, password, role, list(regions), list(households), name or username
            )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {"id": user_id, "username": username, "role": role, "region_ids": list(regions)},
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
