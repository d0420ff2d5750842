"""Many counties, one app (server/counties.py, CONTRACT §1 ZOUFANG_COUNTIES): two county
databases behind one dispatcher, on SQLite and on PostgreSQL. 青溪 (qingxi, a.example) is seeded
with the demo county, 岚山 (lanshan, b.example) from the sample roster, both by the command line
with ``--county``; everything after that goes through the dispatcher by host name."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import current_app
from sqlalchemy import select
from werkzeug.test import Client

from server.cli import main
from server.counties import CountyDispatcher, county_app, load_counties
from server.jobs import Job, JobScheduler
from server.reports.periods import week_label
from server.reports.visits import VisitFilter, encode_cursor
from server.storage.db import db
from server.storage.models import JobRun
from tests.conftest import CHEAP_HASH, _admin, _with_database, sql_engine
from tests.county import Device
from tests.test_cli import free_port
from tests.test_jobs import FakeClock

SAMPLES = Path(__file__).parent / "samples"
SECRET = "counties-test-secret"
PASSWORD = "counties-2026"
CHINA = timezone(timedelta(hours=8))
TEST_CONFIG = {"TESTING": True, "SECRET_KEY": SECRET, "PASSWORD_HASH": CHEAP_HASH}


def counties_toml(path: Path, url_a: str, url_b: str) -> Path:
    path.write_text(
        f"""
[counties.qingxi]
hosts = ["a.example", "qingxi.example"]
database_url = "{url_a}"

[counties.lanshan]
hosts = ["b.example"]
database_url = "{url_b}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def county_urls(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """Two county databases: two SQLite files, or two databases of the test PostgreSQL."""
    if request.param == "sqlite":
        return [f"sqlite:///{tmp_path / name}.db" for name in ("qingxi", "lanshan")]
    admin = request.getfixturevalue("postgres_admin_url")
    template = request.getfixturevalue("postgres_template")
    names = [f"zoufang_county_{name}_{os.urandom(4).hex()}" for name in ("qingxi", "lanshan")]
    for name in names:
        _admin(admin, f"CREATE DATABASE {name} TEMPLATE {template}")
    for name in names:
        request.addfinalizer(
            lambda name=name: _admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        )
    return [_with_database(admin, name) for name in names]


@pytest.fixture
def toml(county_urls: list[str], tmp_path: Path) -> Path:
    return counties_toml(tmp_path / "counties.toml", *county_urls)


def zoufang(toml: Path, *args: str, stdin: str | None = None) -> Any:
    env = {"ZOUFANG_COUNTIES": str(toml), "ZOUFANG_SECRET_KEY": SECRET, "LANG": "en_US.UTF-8"}
    return CliRunner(env=env).invoke(main, list(args), input=stdin, catch_exceptions=False)


def ok(result: Any) -> str:
    assert result.exit_code == 0, result.output
    return str(result.output)


def seed_demo(toml: Path, households: int, weeks: int, as_json: bool = False) -> str:
    """``zoufang --county qingxi seed-demo``: the demo county at qingxi."""
    options = ["--households", str(households), "--weeks", str(weeks), "--password", PASSWORD]
    command = ["--county", "qingxi", "seed-demo", *options, *(["--json"] if as_json else [])]
    return ok(zoufang(toml, *command))


@pytest.fixture
def seeded(toml: Path, tmp_path: Path) -> dict[str, Any]:
    """Both counties through the command line: the demo county at qingxi; at lanshan the
    sample roster and an admin and a supervisor on its county region (read from its export)."""
    ok(zoufang(toml, "--county", "qingxi", "db", "upgrade"))
    ok(zoufang(toml, "--county", "lanshan", "db", "upgrade"))
    demo = json.loads(seed_demo(toml, households=12, weeks=1, as_json=True))
    roster = SAMPLES / "roster_example.csv"
    ok(zoufang(toml, "--county", "lanshan", "import", "roster", str(roster), "--county", "岚山县"))
    export = tmp_path / "lanshan.sqlite"
    ok(zoufang(toml, "--county", "lanshan", "export", "sqlite", str(export)))
    with sqlite3.connect(export) as conn:
        county_b = conn.execute("SELECT id FROM regions WHERE parent_id IS NULL").fetchone()[0]
        households_b = {row[0] for row in conn.execute("SELECT id FROM households")}
        regions_b = {row[0] for row in conn.execute("SELECT id FROM regions")}
    for username, role in (("admin_b", "admin"), ("sup_b", "supervisor")):
        ok(
            zoufang(
                toml,
                "--county",
                "lanshan",
                "users",
                "add",
                username,
                "--role",
                role,
                "--region",
                county_b,
                "--password-stdin",
                stdin=PASSWORD + "\n",
            )
        )
    return {
        "demo": demo,
        "county_b": county_b,
        "households_b": households_b,
        "regions_b": regions_b,
    }


def dispatcher_for(toml: Path, instance: Path) -> CountyDispatcher:
    """What ``zoufang serve`` serves, with the tests' cheap password hashing."""
    counties = load_counties(toml)
    apps = {name: county_app(c, TEST_CONFIG, instance) for name, c in counties.items()}
    return CountyDispatcher(counties, apps)


@pytest.fixture
def dispatcher(toml: Path, tmp_path: Path) -> Any:
    dispatcher = dispatcher_for(toml, tmp_path / "instance")
    yield dispatcher
    for app in dispatcher.apps.values():
        with app.app_context():
            db.engine.dispose()


class HostClient(Client):
    """A test client whose every request names ``host`` in its Host header."""

    def __init__(self, application: Any, host: str) -> None:
        super().__init__(application)
        self.host = host

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", f"http://{self.host}/")
        return super().open(*args, **kwargs)


def sign_in(dispatcher: Any, host: str, username: str) -> Device:
    client = HostClient(dispatcher, host)
    response = client.post(
        "/api/v1/devices", json={"username": username, "password": PASSWORD, "label": "phone"}
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Device(client, body["device_id"], body["token"], body["user"])


def demo_user(seeded: dict[str, Any], role: str) -> str:
    return str(next(u["username"] for u in seeded["demo"]["users"] if u["role"] == role))


def visit_now(device: Device, household_id: str) -> str:
    """A visit an hour ago, pushed now (it counts in this week); its id once applied."""
    visited_at = (datetime.now(CHINA) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    visit = device.visit(household_id, visited_at=visited_at)
    response = device.push([visit])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["results"][0]["status"] == "applied", response.get_json()
    return str(visit["id"])


def this_week() -> str:
    return week_label(datetime.now(CHINA).date())


# --- one county's sync, by its host -----------------------------------------------------------


def test_a_cadre_signs_in_pushes_and_pulls_at_their_countys_host(seeded, dispatcher):
    cadre = sign_in(dispatcher, "a.example", demo_user(seeded, "cadre"))
    households = [r for r in cadre.pull_all() if r["type"] == "household"]
    assert households
    visit_id = visit_now(cadre, households[0]["id"])
    pulled = cadre.pull_all()
    assert [r["id"] for r in pulled if r["type"] == "visit"] == [visit_id]


def test_a_countys_other_host_name_and_a_port_reach_the_same_county(seeded, dispatcher):
    username = demo_user(seeded, "cadre")
    for host in ("qingxi.example", "A.Example:8443"):
        assert sign_in(dispatcher, host, username).user["username"] == username


def test_a_token_of_one_county_is_refused_at_another(seeded, dispatcher):
    cadre = sign_in(dispatcher, "a.example", demo_user(seeded, "cadre"))
    elsewhere = HostClient(dispatcher, "b.example").get("/api/v1/sync/pull", headers=cadre.headers)
    assert elsewhere.status_code == 401
    assert elsewhere.get_json()["error"]["code"] == "unauthorized"


def test_the_users_of_one_county_cannot_sign_in_at_another(seeded, dispatcher):
    client = HostClient(dispatcher, "b.example")
    body = {"username": demo_user(seeded, "cadre"), "password": PASSWORD, "label": "phone"}
    assert client.post("/api/v1/devices", json=body).status_code == 401


def test_a_pull_cursor_of_one_county_is_refused_at_another(seeded, dispatcher):
    cadre_a = sign_in(dispatcher, "a.example", demo_user(seeded, "cadre"))
    cadre_a.pull_all()
    admin_b = sign_in(dispatcher, "b.example", "admin_b")
    response = admin_b.pull(cursor=cadre_a.cursor)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_a_visit_list_cursor_signed_by_one_county_fails_the_others_signature(seeded, dispatcher):
    """A cursor for the very list B's supervisor reads, but signed with A's key: only the
    county's own key tells them apart."""
    supervisor = sign_in(dispatcher, "b.example", "sup_b")
    period, region = this_week(), seeded["county_b"]
    wanted = VisitFilter(region_id=region, period=period)
    with dispatcher.apps["qingxi"].app_context():
        forged = encode_cursor(wanted, supervisor.user["id"], datetime.now(UTC), "x")
    response = supervisor.client.get(
        "/api/v1/reports/visits",
        query_string={"region_id": region, "period": period, "cursor": forged},
        headers=supervisor.headers,
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cursor"


def test_each_county_has_its_own_key_and_every_process_derives_the_same(toml, tmp_path):
    """Keys derived from ZOUFANG_SECRET_KEY: one per county, the same on every app host."""
    keys = []
    for worker in ("one", "two"):
        process = dispatcher_for(toml, tmp_path / worker)
        keys.append({name: app.config["CURSOR_KEY"] for name, app in process.apps.items()})
    assert keys[0] == keys[1]
    assert len(set(keys[0].values())) == 2
    assert (SECRET + ":cursor").encode() not in keys[0].values()


def test_a_countys_own_secret_key_and_settings_reach_its_app_alone(tmp_path):
    path = tmp_path / "counties.toml"
    path.write_text(
        '[counties.qingxi]\nhosts = ["a.example"]\ndatabase_url = "sqlite:///a.db"\n'
        'secret_key = "qingxi-own-key-0123456789"\n'
        'settings = { timezone = "Asia/Urumqi", PUBLIC_URL = "https://a.example" }\n'
        '[counties.lanshan]\nhosts = ["b.example"]\ndatabase_url = "sqlite:///b.db"\n',
        encoding="utf-8",
    )
    counties = load_counties(path)
    config = {**TEST_CONFIG, "PUBLIC_URL": "https://one-for-all.example"}
    a, b = (county_app(counties[name], config, tmp_path) for name in ("qingxi", "lanshan"))
    assert a.config["CURSOR_KEY"] == b"qingxi-own-key-0123456789:cursor"
    assert (a.config["TIMEZONE"], b.config["TIMEZONE"]) == ("Asia/Urumqi", "Asia/Shanghai")
    # a dashboard address for the whole process would send one county's notices to another
    assert (a.config["PUBLIC_URL"], b.config["PUBLIC_URL"]) == ("https://a.example", None)


def test_a_replica_or_photo_store_set_for_the_process_is_no_county_s_own(tmp_path):
    """One replica answers one county's reports, and a store shared by counties would lose a
    photo when one county's clean-up deletes bytes another still refers to."""
    path = tmp_path / "counties.toml"
    path.write_text(
        '[counties.qingxi]\nhosts = ["a.example"]\ndatabase_url = "sqlite:///a.db"\n'
        f'settings = {{ BLOB_STORE = "directory:{(tmp_path / "photos").as_posix()}" }}\n'
        '[counties.lanshan]\nhosts = ["b.example"]\ndatabase_url = "sqlite:///b.db"\n',
        encoding="utf-8",
    )
    counties = load_counties(path)
    config = {
        **TEST_CONFIG,
        "REPORTS_DATABASE_URL": "postgresql://replica.example/one",
        "BLOB_STORE": f"directory:{(tmp_path / 'shared').as_posix()}",
    }
    a, b = (county_app(counties[name], config, tmp_path) for name in ("qingxi", "lanshan"))
    assert (a.config["REPORTS_DATABASE_URL"], b.config["REPORTS_DATABASE_URL"]) == (None, None)
    assert a.config["BLOB_STORE"] == f"directory:{(tmp_path / 'photos').as_posix()}"
    assert b.config["BLOB_STORE"] == "database"


def test_each_county_has_its_own_instance_folder_and_generated_key(monkeypatch, tmp_path):
    """With no key anywhere, each county generates and keeps its own, in its own folder."""
    monkeypatch.delenv("ZOUFANG_SECRET_KEY", raising=False)
    toml = counties_toml(tmp_path / "counties.toml", "sqlite:///a.db", "sqlite:///b.db")
    counties = load_counties(toml)
    apps = [county_app(c, {"TESTING": True}, tmp_path / "instance") for c in counties.values()]
    folders = [Path(app.instance_path) for app in apps]
    assert folders == [tmp_path / "instance" / "counties" / n for n in ("qingxi", "lanshan")]
    kept = [(folder / "secret_key").read_text() for folder in folders]
    assert [app.config["SECRET_KEY"] for app in apps] == kept and kept[0] != kept[1]


def test_serve_with_county_serves_that_county_alone(monkeypatch, tmp_path):
    from server.counties import served

    toml = counties_toml(tmp_path / "counties.toml", "sqlite:///a.db", "sqlite:///b.db")
    monkeypatch.setenv("ZOUFANG_COUNTIES", str(toml))
    monkeypatch.setenv("ZOUFANG_SECRET_KEY", SECRET)
    application, apps = served("lanshan")
    assert [app.config["COUNTY"] for app in apps] == ["lanshan"]
    health = {h: HostClient(application, f"{h}.example").get("/healthz").get_json() for h in "ab"}
    assert health == {"a": {"status": "ok", "counties": 1}, "b": {"status": "ok"}}


# --- reports never mix counties ---------------------------------------------------------------


def test_reports_of_one_county_never_show_anothers_households_or_visits(seeded, dispatcher):
    cadre = sign_in(dispatcher, "a.example", demo_user(seeded, "cadre"))
    households_a = {r["id"] for r in cadre.pull_all() if r["type"] == "household"}
    visit_id = visit_now(cadre, sorted(households_a)[0])
    supervisor = sign_in(dispatcher, "b.example", "sup_b")
    query = {"region_id": seeded["county_b"], "period": this_week()}
    coverage = supervisor.client.get(
        "/api/v1/reports/coverage", query_string=query, headers=supervisor.headers
    ).get_json()
    visits = supervisor.client.get(
        "/api/v1/reports/visits", query_string=query, headers=supervisor.headers
    ).get_json()
    overdue = supervisor.client.get(
        "/api/v1/reports/overdue",
        query_string={"region_id": seeded["county_b"]},
        headers=supervisor.headers,
    ).get_json()
    pulled = {r["id"] for r in supervisor.pull_all()}
    assert {c["region_id"] for c in coverage["children"]} <= seeded["regions_b"]
    assert coverage["summary"]["visited"] == 0 and visits["visits"] == []
    overdue_ids = {h["household_id"] for h in overdue["households"]}
    assert overdue_ids and overdue_ids <= seeded["households_b"]
    assert pulled and not pulled & households_a and visit_id not in pulled


def test_a_region_of_one_county_is_unknown_at_another(seeded, dispatcher):
    cadre = sign_in(dispatcher, "a.example", demo_user(seeded, "cadre"))
    region_a = next(r["id"] for r in cadre.pull_all() if r["type"] == "region")
    supervisor = sign_in(dispatcher, "b.example", "sup_b")
    response = supervisor.client.get(
        "/api/v1/reports/coverage",
        query_string={"region_id": region_a, "period": this_week()},
        headers=supervisor.headers,
    )
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


# --- hosts no county lists ------------------------------------------------------------------


def test_an_unknown_host_gets_404_in_the_error_shape_under_api(dispatcher):
    client = HostClient(dispatcher, "c.example")
    response = client.get("/api/v1/sync/pull", headers={"Accept-Language": "en"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert response.get_json()["error"]["message"] == "Not found"
    signing_in = client.post("/api/v1/devices", json={"username": "x", "password": "y"})
    assert signing_in.status_code == 404 and signing_in.get_json()["error"]["message"]


def test_an_unknown_host_gets_a_plain_404_page_outside_the_api(dispatcher):
    response = HostClient(dispatcher, "c.example").get("/admin")
    assert response.status_code == 404 and response.mimetype == "text/plain"
    assert "No county" in response.get_data(as_text=True)


def test_healthz_at_an_unknown_host_answers_for_the_process(dispatcher):
    anywhere = HostClient(dispatcher, "10.0.0.7").get("/healthz").get_json()
    assert anywhere == {"status": "ok", "counties": 2}
    assert HostClient(dispatcher, "b.example").get("/healthz").get_json() == {"status": "ok"}


# --- the command line takes the county -------------------------------------------------------


def test_forms_and_jobs_commands_work_on_the_county_named(seeded, toml):
    monthly = SAMPLES / "xlsform_monthly_monitoring.xlsx"
    ok(zoufang(toml, "--county", "lanshan", "forms", "import-xlsform", str(monthly)))
    forms = {
        name: {
            (f["form_id"], f["version"])
            for f in json.loads(ok(zoufang(toml, "--county", name, "forms", "list", "--json")))
        }
        for name in ("qingxi", "lanshan")
    }
    assert forms["lanshan"] - forms["qingxi"] == {("monthly_monitoring", 2)}
    assert ok(zoufang(toml, "--county", "qingxi", "jobs", "run", "token_purge")).startswith(
        "token_purge: ok"
    )
    jobs = {
        name: {
            j["name"]: j["last_status"]
            for j in json.loads(ok(zoufang(toml, "--county", name, "jobs", "list", "--json")))
        }
        for name in ("qingxi", "lanshan")
    }
    assert jobs["qingxi"]["token_purge"] == "ok" and jobs["lanshan"]["token_purge"] is None


def test_a_command_without_county_is_refused_when_there_are_counties(toml):
    result = zoufang(toml, "db", "upgrade")
    assert result.exit_code == 2
    assert "names 2 counties (qingxi, lanshan)" in result.output and "--county" in result.output


def test_an_unknown_county_is_refused_with_exit_2(toml):
    result = zoufang(toml, "--county", "nowhere", "db", "upgrade")
    assert result.exit_code == 2
    assert "no county named 'nowhere'" in result.output and "qingxi, lanshan" in result.output


def test_county_without_a_counties_file_is_refused(tmp_path):
    env = {"ZOUFANG_DATABASE_URL": f"sqlite:///{tmp_path / 'z.db'}"}
    result = CliRunner(env=env).invoke(main, ["--county", "qingxi", "db", "upgrade"])
    assert result.exit_code == 2 and "needs ZOUFANG_COUNTIES" in result.output


def test_counties_list_checks_the_file_and_names_each_county_with_its_hosts(toml):
    assert ok(zoufang(toml, "counties", "list")).splitlines() == [
        "qingxi a.example qingxi.example",
        "lanshan b.example",
    ]


# --- the scheduler: each county's jobs run once, claimed in its own database --------------------


def test_each_countys_job_runs_once_however_many_processes_serve_it(seeded, toml, tmp_path):
    """Two worker processes (two dispatchers on the same file), each with a scheduler per
    county, fire the same job at the same time: it runs once in each county, and each run
    is recorded in that county's own job_runs."""
    processes = [dispatcher_for(toml, tmp_path / f"worker{i}") for i in (1, 2)]
    calls: list[str] = []

    def count(_at: datetime) -> str:
        calls.append(current_app.config["COUNTY"])
        return "counted"

    job = Job("count", {"hour": 7, "minute": 30}, count, "测试", "test")
    clock = FakeClock("2026-11-23T07:30:01+08:00")
    schedulers = []
    for process in processes:
        for app in process.apps.values():
            app.config["CLOCK"] = clock
            schedulers.append(JobScheduler(app, [job]))
    try:
        for scheduler in schedulers:
            assert scheduler.catch_up() == []
        statuses = [s.run_due("count").status for s in schedulers]
        assert sorted(calls) == ["lanshan", "qingxi"]
        assert sorted(statuses) == ["done", "done", "ok", "ok"]
        for name in ("qingxi", "lanshan"):
            with processes[0].apps[name].app_context(), db.engine.connect() as conn:
                row = conn.execute(select(JobRun).where(JobRun.name == "count")).one()
            assert (row.last_status, row.last_message) == ("ok", "counted")
        assert all(f":{s.app.config['COUNTY']}:" in s.owner for s in schedulers)  # in its logs
    finally:
        for process in processes:
            for app in process.apps.values():
                with app.app_context():
                    db.engine.dispose()


# --- a bad file is refused with a sentence, never a traceback -------------------------------


BAD_FILES = {
    "no database_url": (
        '[counties.qingxi]\nhosts = ["a.example"]\n',
        "county 'qingxi' has no database_url",
    ),
    "a host listed twice": (
        '[counties.qingxi]\nhosts = ["a.example"]\ndatabase_url = "sqlite:///a.db"\n'
        '[counties.lanshan]\nhosts = ["A.example"]\ndatabase_url = "sqlite:///b.db"\n',
        "host 'a.example' is listed for both 'qingxi' and 'lanshan'",
    ),
    "one database for two counties": (
        '[counties.qingxi]\nhosts = ["a.example"]\ndatabase_url = "postgres://u@db/x"\n'
        '[counties.lanshan]\nhosts = ["b.example"]\ndatabase_url = "postgresql://u@db/x"\n',
        "database 'db/x' is listed for both 'qingxi' and 'lanshan'",
    ),
    "an unknown key": (
        '[counties.qingxi]\nhosts = ["a.example"]\ndatabse_url = "sqlite:///a.db"\n',
        "county 'qingxi' has unknown key 'databse_url'",
    ),
    "a name not in snake_case": (
        '[counties.Qing-Xi]\nhosts = ["a.example"]\ndatabase_url = "sqlite:///a.db"\n',
        "county name 'Qing-Xi' is not snake_case",
    ),
    "a host with a port": (
        '[counties.qingxi]\nhosts = ["a.example:8443"]\ndatabase_url = "sqlite:///a.db"\n',
        "'a.example:8443' is not a host name (hosts are matched without their port)",
    ),
    "a database among the settings": (
        '[counties.qingxi]\nhosts = ["a.example"]\ndatabase_url = "sqlite:///a.db"\n'
        'settings = { database_url = "sqlite:///b.db" }\n',
        "county 'qingxi': 'DATABASE_URL' cannot be a setting here",
    ),
    "no county": ("# nothing yet\n", "names no county"),
    "not TOML": ("[counties.qingxi\n", "is not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_counties_file_is_refused_naming_the_problem(case, tmp_path):
    content, message = BAD_FILES[case]
    path = tmp_path / "counties.toml"
    path.write_text(content, encoding="utf-8")
    for command in (["--county", "qingxi", "db", "upgrade"], ["serve"]):
        result = zoufang(path, *command)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_a_missing_counties_file_is_refused_naming_it(tmp_path):
    result = zoufang(tmp_path / "nowhere.toml", "counties", "list")
    assert result.exit_code == 2 and "nowhere.toml): cannot read the file" in result.output


# --- the real server ----------------------------------------------------------------------------


def test_zoufang_serve_routes_two_sqlite_counties_by_host_name(tmp_path):
    toml = counties_toml(
        tmp_path / "counties.toml",
        f"sqlite:///{tmp_path / 'qingxi.db'}",
        f"sqlite:///{tmp_path / 'lanshan.db'}",
    )
    seed_demo(toml, households=5, weeks=0)
    ok(zoufang(toml, "--county", "lanshan", "db", "upgrade"))
    port = free_port()
    env = {**os.environ, "ZOUFANG_COUNTIES": str(toml), "ZOUFANG_SECRET_KEY": SECRET}
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--workers", "1"]
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)

    def answer(host: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=data,
            headers={"Host": host, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    try:
        for _ in range(150):
            try:
                health = answer("unknown.example", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        assert health == (200, {"status": "ok", "counties": 2})
        sign_in_body = {"username": "admin", "password": PASSWORD, "label": "serve test"}
        assert answer("a.example", "/api/v1/devices", sign_in_body)[0] == 201
        assert answer("b.example", "/api/v1/devices", sign_in_body)[0] == 401
        assert answer("c.example", "/api/v1/devices", sign_in_body)[0] == 404
        jobs = {}
        for _ in range(100):  # each county's scheduler makes its job rows at start
            jobs = {
                n: job_names(sql_engine(f"sqlite:///{tmp_path / n}.db"))
                for n in ("qingxi", "lanshan")
            }
            if all(len(names) >= 8 for names in jobs.values()):
                break
            time.sleep(0.1)
        assert all(len(names) >= 8 for names in jobs.values()), jobs
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
    signed_in = [line for line in log.read_text().splitlines() if "POST /api/v1/devices" in line]
    assert len(signed_in) == 3 and signed_in[0].endswith('"a.example"')  # the log names the host


def job_names(engine: Any) -> list[str]:
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(JobRun.name)).scalars())
    finally:
        engine.dispose()
