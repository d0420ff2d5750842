"""The ``zoufang`` command line (CONTRACT §1)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask

from server.storage.db import db as database


class CountyUnusable(click.ClickException):
    """The counties file or ``--county`` cannot be used: a usage error (exit 2)."""

    exit_code = 2


def _app() -> Flask:
    """The app for one command (of ``--county``'s county with ZOUFANG_COUNTIES); its
    database connections close when the command ends."""
    from server.counties import CountiesError, command_app

    try:
        app = command_app(_county())
    except CountiesError as exc:
        raise CountyUnusable(str(exc)) from None

    def dispose() -> None:
        from server.reports import province_counties

        with app.app_context():
            database.engine.dispose()
        province_counties.dispose(app)

    click.get_current_context().call_on_close(dispose)
    return app


@click.group()
@click.option(
    "--county",
    default=None,
    metavar="NAME",
    help="the county of the ZOUFANG_COUNTIES file to work on (docs/deploy.md)",
)
def main(county: str | None) -> None:
    """Zoufang (走访): household visit records, offline-first."""


def _county() -> str | None:
    """``zoufang --county NAME …``, given before the command."""
    county: str | None = click.get_current_context().find_root().params.get("county")
    return county


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema of ZOUFANG_DATABASE_URL."""
    from server.storage.upgrade import upgrade

    app = _app()
    upgrade(app, revision)
    click.echo(
        f"database at revision {revision}: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}"
    )
    if revision == "head":
        _publish_shipped_forms(app)


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
    from server.admin.accounts import AccountError
    from server.admin.seed import SeedError, seed_demo_county
    from server.storage.upgrade import upgrade

    app = _app()
    upgrade(app)
    try:
        with app.app_context():
            summary = seed_demo_county(households=households, password=password, weeks=weeks)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
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
    """Serve the PWA and the API with gunicorn (a production WSGI server); with
    ZOUFANG_COUNTIES, every county of the file (or only --county's), chosen by host name."""
    from server.counties import CountiesError, served
    from server.wsgi import run

    try:
        application, apps = served(_county())
    except CountiesError as exc:
        raise CountyUnusable(str(exc)) from None
    run(application, apps, host, port, workers, threads, scheduler=not no_scheduler)


@main.group("counties")
def counties_group() -> None:
    """The counties of ZOUFANG_COUNTIES (docs/deploy.md, "Several counties in one app")."""


@counties_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the counties as JSON")
def counties_list(as_json: bool) -> None:
    """Check the file and print each county, its name first and then its host names (to run
    a command for every county: ``zoufang counties list | cut -d' ' -f1``)."""
    from server.counties import CountiesError, counties_file, load_counties

    path = counties_file()
    try:
        if path is None:
            raise CountiesError("ZOUFANG_COUNTIES is not set: this server has one county")
        counties = load_counties(path)
    except CountiesError as exc:
        raise CountyUnusable(str(exc)) from None
    if as_json:
        listed = [{"name": c.name, "hosts": list(c.hosts)} for c in counties.values()]
        click.echo(json.dumps(listed, ensure_ascii=False))
        return
    for county in counties.values():
        click.echo(f"{county.name} {' '.join(county.hosts)}")


@main.group("province")
def province_group() -> None:
    """A province over the counties of ZOUFANG_COUNTIES (docs/deploy.md)."""


@province_group.command("regions")
@click.option("--name", default=None, help="the province region's name, when there is none yet")
@click.option("--code", default=None, help="its 区划代码, e.g. 34")
def province_regions(name: str | None, code: str | None) -> None:
    """Copy each county's county region (id, name, code) under the province region in the
    province's database; prints the province region's id (for users add --region)."""
    from server.reports.province_counties import ProvinceError, copy_county_regions

    app = _app()
    try:
        with app.app_context():
            copied = copy_county_regions(name, code)
    except ProvinceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(copied, ensure_ascii=False))


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
    from server.admin.accounts import AccountError, create_user

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


@main.group()
def jobs() -> None:
    """Scheduled jobs (docs/jobs.md)."""


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the jobs as JSON")
def jobs_list(as_json: bool) -> None:
    """Each job: schedule, last run and its result, next run."""
    from server.jobs import job_statuses

    with _app().app_context():
        statuses = job_statuses()
    if as_json:
        click.echo(json.dumps(statuses, ensure_ascii=False))
        return
    for job in statuses:
        click.echo(
            f"{job['name']:<20} {job['schedule']:<14} {job['last_status'] or 'never':<11} "
            f"last {job['last_started_at'] or '-'}  next {job['next_run_at'] or '-'}  "
            f"{job['last_message'] or ''}".rstrip()
        )


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """Run the job NAME now, under the same lock as the scheduler; exit 1 unless it ran ok."""
    from server.jobs import UnknownJob, run_now

    try:
        with _app().app_context():
            result = run_now(name)
    except UnknownJob as exc:
        raise click.ClickException(f"no job named {name!r} (see `zoufang jobs list`)") from exc
    click.echo(f"{name}: {result.status} {result.message}".rstrip())
    if result.status != "ok":
        sys.exit(1)


@main.group("import")
def import_() -> None:
    """Import data from files."""


@import_.command("roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--county",
    default=None,
    help="the county the roster belongs to, created if no county has this name "
    "(needed when the database has no county or several)",
)
@click.option("--dry-run", is_flag=True, help="check the file and count the changes; write nothing")
def import_roster(file: str, county: str | None, dry_run: bool) -> None:
    """Households and people from a roster (.xlsx, or .csv in UTF-8): every row, or none.

    Messages are in Chinese when LANG starts with zh, in English otherwise.
    """
    import os
    from pathlib import Path

    from server.admin.accounts import global_admins_keep_every_county
    from server.admin.roster import RosterRejected, summary_text
    from server.admin.roster import import_roster as run_import
    from server.admin.uploads import UploadTooLarge
    from server.storage.upgrade import upgrade

    english = not os.environ.get("LANG", "").lower().startswith("zh")
    warning = "warning: " if english else "提示："
    path = Path(file)
    app = _app()
    upgrade(app)
    try:
        with app.app_context(), global_admins_keep_every_county(None):
            summary = run_import(
                path.read_bytes(), county=county, dry_run=dry_run, source=path.name
            )
    except UploadTooLarge as exc:
        raise click.ClickException(f"{path.name}: {exc.text(english)}") from None
    except RosterRejected as exc:
        for issue in exc.warnings:
            click.echo(warning + issue.text(english), err=True)
        for issue in exc.errors:
            click.echo(issue.text(english), err=True)
        raise click.ClickException(
            f"{len(exc.errors)} error(s) in {path.name}; nothing was imported"
            if english
            else f"{path.name} 中有 {len(exc.errors)} 处错误，未导入任何数据"
        ) from None
    for issue in summary["warnings"]:
        click.echo(warning + issue.text(english), err=True)
    click.echo(summary_text(summary, english))


@main.group()
def export() -> None:
    """Exports for analysis outside the app."""


@export.command("sqlite")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def export_sqlite(file: str) -> None:
    """A read-only SQLite snapshot FILE (sqlite-utils) for Datasette or Excel; ID numbers and
    phone numbers masked, no password hashes."""
    from pathlib import Path

    from server.reports.exports import sqlite_snapshot

    with _app().app_context():
        counts = sqlite_snapshot(Path(file))
    click.echo(json.dumps({"file": file, "counts": counts}, ensure_ascii=False))


@main.group("blobs")
def blobs_group() -> None:
    """Photos' bytes (docs/deploy.md, "Photos")."""


@blobs_group.command("migrate")
@click.option("--batch", default=50, show_default=True, type=click.IntRange(1, 1000))
def blobs_migrate(batch: int) -> None:
    """Move photos' bytes from the database into the store ZOUFANG_BLOB_STORE names (a
    directory or a bucket). Safe to stop and run again; the app keeps serving meanwhile."""
    from server.service import store
    from server.storage.blobstore import BadBlobStore, blob_store, move_out_of_database

    with _app().app_context():
        try:
            moved, size = move_out_of_database(store().engine, blob_store(), batch)
        except BadBlobStore as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"moved": moved, "bytes": size}))


@main.group("forms")
def forms_group() -> None:
    """Visit forms: the versions published to phones (CONTRACT §9, forms/README.md)."""


def _publish_shipped_forms(app: Flask) -> None:
    from server.admin.forms_service import FormVersionConflict, publish_forms

    try:
        with app.app_context():
            published = publish_forms(actor=None)
    except FormVersionConflict as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"form versions newly published: {published}")


@forms_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the versions as JSON")
def forms_list(as_json: bool) -> None:
    """Every form version: published to phones, or only shipped in forms/definitions."""
    from server.admin.forms_service import form_overview

    with _app().app_context():
        overview = form_overview()
    if as_json:
        click.echo(json.dumps(overview, ensure_ascii=False))
        return
    for form in overview:
        click.echo(
            f"{form['form_id']:<24} v{form['version']:<4} {form['fields']:>3} fields  "
            f"{form['policy'] or '-':<8} {form['title']['zh-CN']}  [{form['status']}]"
        )


@forms_group.command("publish")
def forms_publish() -> None:
    """Publish the shipped form versions not published yet (db upgrade does this too)."""
    _publish_shipped_forms(_app())


@forms_group.command("import-xlsform")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--form-id", default=None, help="the form it is a version of (default: settings)")
@click.option("--dry-run", is_flag=True, help="check and print the definition; publish nothing")
@click.option(
    "--media",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="folder of the choices files (select_one_from_file); default: the workbook's folder",
)
def forms_import_xlsform(file: str, form_id: str | None, dry_run: bool, media: str | None) -> None:
    """Publish an XLSForm (.xlsx or .xls, as ODK/KoBo read it) as the next version of its form."""
    from pathlib import Path

    from forms.xlsform import XLSFormError
    from server.admin.forms_service import import_xlsform
    from server.admin.uploads import UploadTooLarge

    path = Path(file)
    try:
        with _app().app_context():
            result = import_xlsform(
                path, form_id=form_id, dry_run=dry_run, media=Path(media) if media else None
            )
    except XLSFormError as exc:
        raise click.ClickException(f"{path.name}: {exc}") from exc
    except UploadTooLarge as exc:
        raise click.ClickException(f"{path.name}: {exc.text(english=True)}") from None
    form = result.form
    name = f"{form.form_id} version {form.version} ({form.field_count()} fields)"
    if result.status == "dry_run":
        click.echo(json.dumps(form.to_record_data(), ensure_ascii=False, indent=2))
        click.echo(f"dry run: would publish {name}; nothing was stored", err=True)
    elif result.status == "unchanged":
        click.echo(f"unchanged: identical to the published {name}; nothing was stored")
    else:
        click.echo(f"published {name}; phones get it on their next sync")


if __name__ == "__main__":
    main()
