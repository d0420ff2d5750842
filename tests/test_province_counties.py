"""A province over county databases (server/reports/province_counties.py, docs/deploy.md): a
ZOUFANG_COUNTIES file with two counties and a ``[province]``, three databases (SQLite files, or
three databases of the test PostgreSQL). 青溪 (qingxi) is the demo county, 岚山 (lanshan) the
sample roster; each keeps its snapshot by its own bulletin job, and the province, in its own
database, adds them up without reading a visit. 黟县 is a county of the province with no
database in the file yet: missing."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server import jobs
from server.counties import (
    PROVINCE,
    CountiesError,
    CountyDispatcher,
    county_app,
    load_counties,
    load_province,
    province_app,
    served,
)
from server.reports import province as province_reports
from server.reports import province_counties
from server.reports.periods import week_label
from server.service import create_server_records, store
from server.storage.db import db
from server.storage.models import Snapshot
from tests.conftest import _admin, _with_database
from tests.county import uid
from tests.test_counties import (
    CHINA,
    PASSWORD,
    SAMPLES,
    TEST_CONFIG,
    HostClient,
    ok,
    seed_demo,
    sign_in,
    zoufang,
)

PROVINCE_HOST = "sheng.example"
NAMES = ("qingxi", "lanshan", "province")


def province_toml(path: Path, urls: dict[str, str], counties: str = "") -> Path:
    path.write_text(
        f"""
[counties.qingxi]
hosts = ["a.example"]
database_url = "{urls["qingxi"]}"

[counties.lanshan]
hosts = ["b.example"]
database_url = "{urls["lanshan"]}"

[province]
hosts = ["{PROVINCE_HOST}"]
database_url = "{urls["province"]}"
{counties}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Three databases: two counties' and the province's."""
    if request.param == "sqlite":
        return {name: f"sqlite:///{tmp_path / name}.db" for name in NAMES}
    admin = request.getfixturevalue("postgres_admin_url")
    template = request.getfixturevalue("postgres_template")
    found = {}
    for name in NAMES:
        database = f"zoufang_{name}_{os.urandom(4).hex()}"
        _admin(admin, f"CREATE DATABASE {database} TEMPLATE {template}")
        request.addfinalizer(
            lambda d=database: _admin(admin, f"DROP DATABASE IF EXISTS {d} WITH (FORCE)")
        )
        found[name] = _with_database(admin, database)
    return found


def last_week() -> str:
    """The ISO week the bulletin job keeps today: the one that ended last Sunday."""
    today = datetime.now(CHINA).date()
    return week_label(today - timedelta(days=today.isoweekday()))


@pytest.fixture
def setup(urls: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """Everything through the command line: both counties seeded and their bulletin job run;
    the province's regions copied from the county databases, 黟县 added by hand, and the
    province's supervisor."""
    toml = province_toml(tmp_path / "counties.toml", urls)
    for name in NAMES:
        ok(zoufang(toml, "--county", name, "db", "upgrade"))
    demo = json.loads(seed_demo(toml, households=12, weeks=2, as_json=True))
    roster = str(SAMPLES / "roster_example.csv")
    ok(zoufang(toml, "--county", "lanshan", "import", "roster", roster, "--county", "岚山县"))
    for county in ("qingxi", "lanshan"):
        ok(zoufang(toml, "--county", county, "jobs", "run", "weekly_bulletin"))
    command = ["--county", PROVINCE, "province", "regions", "--name", "安徽省", "--code", "34"]
    copied = json.loads(ok(zoufang(toml, *command)))
    assert copied["created"] == 3  # the province and its two counties
    yixian = uid()
    with province_app(load_province(toml), load_counties(toml), TEST_CONFIG).app_context():
        region = {"parent_id": copied["province_id"], "level": "county", "name": "黟县"}
        create_server_records([("region", yixian, {**region, "code": "341023"})], actor=None)
        db.engine.dispose()
    region_option = ["--region", copied["province_id"], "--password-stdin"]
    add = ["--county", PROVINCE, "users", "add", "sup_province", "--role", "supervisor"]
    ok(zoufang(toml, *add, *region_option, stdin=PASSWORD + "\n"))
    return {
        "toml": toml,
        "demo": demo,
        "province_id": copied["province_id"],
        "qingxi": copied["counties"]["qingxi"][0],
        "lanshan": copied["counties"]["lanshan"][0],
        "yixian": yixian,
    }


def dispatcher_for(toml: Path, instance: Path) -> CountyDispatcher:
    """What ``zoufang serve`` serves with this file, with the tests' cheap password hashing."""
    counties, province = load_counties(toml), load_province(toml)
    assert province is not None
    apps = {name: county_app(c, TEST_CONFIG, instance) for name, c in counties.items()}
    apps[PROVINCE] = province_app(province, counties, TEST_CONFIG, instance)
    return CountyDispatcher({**counties, PROVINCE: province.app}, apps)


@pytest.fixture
def dispatcher(setup: dict[str, Any], tmp_path: Path) -> Any:
    dispatcher = dispatcher_for(setup["toml"], tmp_path / "instance")
    yield dispatcher
    dispose(dispatcher)


def dispose(dispatcher: CountyDispatcher) -> None:
    for app in dispatcher.apps.values():
        with app.app_context():
            db.engine.dispose()
        province_counties.dispose(app)


def kept_summary(dispatcher: CountyDispatcher, county: str, region_id: str) -> dict[str, Any]:
    """The snapshot the county's bulletin job kept in its own database."""
    with dispatcher.apps[county].app_context(), store().engine.connect() as conn:
        data = conn.execute(
            select(Snapshot.data).where(
                Snapshot.kind == province_reports.KIND, Snapshot.region_id == region_id
            )
        ).scalar_one()
    return dict(json.loads(data)["summary"])


def ask(dispatcher: Any, setup: dict[str, Any], path: str, **query: Any) -> Any:
    supervisor = sign_in(dispatcher, PROVINCE_HOST, "sup_province")
    query = {"region_id": setup["province_id"], **query}
    return supervisor.client.get(path, query_string=query, headers=supervisor.headers)


def test_a_province_supervisor_sees_each_county_databases_snapshot_in_one_answer(setup, dispatcher):
    response = ask(dispatcher, setup, "/api/v1/reports/coverage", period=last_week())
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    qingxi = kept_summary(dispatcher, "qingxi", setup["qingxi"])
    lanshan = kept_summary(dispatcher, "lanshan", setup["lanshan"])
    assert qingxi["due"] > 0
    children = {c["region_id"]: c for c in body["children"]}
    assert (children[setup["qingxi"]]["due"], children[setup["qingxi"]]["visited"]) == (
        qingxi["due"],
        qingxi["visited"],
    )
    assert children[setup["lanshan"]]["due"] == lanshan["due"]
    assert body["summary"]["due"] == qingxi["due"] + lanshan["due"]
    assert body["summary"]["visited"] == qingxi["visited"] + lanshan["visited"]
    assert body["missing"] == [{"region_id": setup["yixian"], "name": "黟县"}]


def test_the_province_trend_adds_up_the_county_databases_snapshots(setup, dispatcher):
    response = ask(dispatcher, setup, "/api/v1/reports/trend", weeks=2)
    assert response.status_code == 200, response.get_json()
    weeks = {w["period"]: w for w in response.get_json()["weeks"]}
    qingxi = kept_summary(dispatcher, "qingxi", setup["qingxi"])
    lanshan = kept_summary(dispatcher, "lanshan", setup["lanshan"])
    assert weeks[last_week()]["due"] == qingxi["due"] + lanshan["due"]
    assert weeks[last_week()]["missing"] == 1  # 黟县


def test_a_county_supervisors_token_is_refused_at_the_province_host(setup, dispatcher):
    supervisor = next(u for u in setup["demo"]["users"] if u["role"] == "supervisor")
    county = sign_in(dispatcher, "a.example", supervisor["username"])
    at_province = HostClient(dispatcher, PROVINCE_HOST)
    query = {"region_id": setup["province_id"], "period": last_week()}
    response = at_province.get(
        "/api/v1/reports/coverage", query_string=query, headers=county.headers
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_county_database_that_cannot_be_read_is_missing_and_the_answer_still_200(
    setup, urls, tmp_path, caplog
):
    if urls["lanshan"].startswith("sqlite"):
        gone = f"sqlite:///{tmp_path / 'gone' / 'lanshan.db'}"
    else:
        gone = urls["lanshan"].rsplit("/", 1)[0] + "/zoufang_no_such_county"
    toml = province_toml(tmp_path / "broken.toml", {**urls, "lanshan": gone})
    dispatcher = dispatcher_for(toml, tmp_path / "instance")
    try:
        with caplog.at_level(logging.WARNING, logger="server.reports.province_counties"):
            response = ask(dispatcher, setup, "/api/v1/reports/coverage", period=last_week())
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        missing = {m["region_id"] for m in body["missing"]}
        assert missing == {setup["lanshan"], setup["yixian"]}
        assert body["summary"]["due"] == kept_summary(dispatcher, "qingxi", setup["qingxi"])["due"]
        assert "county lanshan cannot be read" in caplog.text
    finally:
        dispose(dispatcher)


def test_a_province_reads_only_the_counties_its_table_names(setup, urls, tmp_path):
    toml = province_toml(tmp_path / "one.toml", urls, counties='counties = ["qingxi"]')
    dispatcher = dispatcher_for(toml, tmp_path / "instance")
    try:
        body = ask(dispatcher, setup, "/api/v1/reports/coverage", period=last_week()).get_json()
        assert {m["region_id"] for m in body["missing"]} == {setup["lanshan"], setup["yixian"]}
    finally:
        dispose(dispatcher)


def test_the_province_keeps_no_bulletin_of_its_own(setup, dispatcher):
    """Its county regions have no households in its database: a bulletin there would be
    0 % for every county."""
    app = dispatcher.apps[PROVINCE]
    with app.app_context():
        jobs.weekly_bulletin(datetime.now(CHINA).replace(tzinfo=None))
        with store().engine.connect() as conn:
            assert conn.execute(select(Snapshot.id)).all() == []


def test_serve_routes_the_province_host_to_the_province_app(setup, monkeypatch):
    monkeypatch.setenv("ZOUFANG_COUNTIES", str(setup["toml"]))
    monkeypatch.setenv("ZOUFANG_SECRET_KEY", "counties-test-secret")
    application, apps = served(None)
    try:
        assert sorted(app.config["COUNTY"] for app in apps) == ["lanshan", PROVINCE, "qingxi"]
        assert application.by_host[PROVINCE_HOST].config["COUNTY"] == PROVINCE
        alone, only = served(PROVINCE)
        assert list(alone.by_host) == [PROVINCE_HOST] and len(only) == 1
        apps.extend(only)
    finally:
        for app in apps:
            with app.app_context():
                db.engine.dispose()
            province_counties.dispose(app)


BAD_PROVINCES = {
    "a county the file does not name": (
        'counties = ["qingxi", "yixian"]',
        "province: 'yixian' is no county of the file",
    ),
    "the host of a county": (
        "",
        "host 'a.example' is listed for both 'qingxi' and 'province'",
    ),
}


@pytest.mark.parametrize("case", BAD_PROVINCES, ids=list(BAD_PROVINCES))
def test_a_bad_province_table_is_refused_naming_the_problem(case, tmp_path):
    counties, message = BAD_PROVINCES[case]
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in NAMES}
    toml = province_toml(tmp_path / "counties.toml", urls, counties)
    if case == "the host of a county":
        text = toml.read_text(encoding="utf-8").replace(PROVINCE_HOST, "a.example")
        toml.write_text(text, encoding="utf-8")
    with pytest.raises(CountiesError, match=message):
        load_province(toml)
