"""Form versions on the server: the database is the source of truth, published versions never
change, and a visit is checked by the version it was filled with, however old."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event

from forms import FormVersion, load_definitions, parse_definition
from server.admin.forms_service import (
    FormVersionConflict,
    answer_checker,
    publish_forms,
    publish_versions,
    published_form,
    published_versions,
    shipped_versions,
)
from server.cli import main
from server.service import store
from server.storage.db import db
from server.storage.upgrade import upgrade
from tests.conftest import app_for
from tests.county import build_county

MONTHLY_XLSFORM = Path(__file__).parent / "samples" / "xlsform_monthly_monitoring.xlsx"
# Valid for monthly_monitoring version 1, where measure_note is optional.
NEW_MEASURE_WITHOUT_NOTE = {"risk_level": "low", "new_measure_needed": True}


def monthly(version: int, *, note_required: bool) -> FormVersion:
    """Version 1 of monthly_monitoring renumbered, with measure_note required or not."""
    doc = copy.deepcopy(dict(load_definitions().get("monthly_monitoring", 1).definition))
    doc["version"] = version
    for field in doc["fields"]:
        if field["id"] == "measure_note" and note_required:
            field["required"] = True
    (form,) = parse_definition({"form_id": "monthly_monitoring", "versions": [doc]})
    return form


def monthly_visit(phone: Any, household: str, version: int, **data: Any) -> dict[str, Any]:
    return phone.visit(
        household,
        form_id="monthly_monitoring",
        form_version=version,
        answers=NEW_MEASURE_WITHOUT_NOTE,
        **data,
    )


def cli(url: str, *args: str) -> Any:
    env = {"ZOUFANG_DATABASE_URL": url, "ZOUFANG_SECRET_KEY": "cli-test"}
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def test_a_visit_filled_offline_with_version_1_is_accepted_after_version_2_is_published(
    any_county: Any,
) -> None:
    with any_county.app.app_context():
        publish_forms(actor=None)
    phone = any_county.device("cadre_a")
    phone.pull_all()  # the phone has version 1, then stays offline for months
    with any_county.app.app_context():
        publish_versions([monthly(2, note_required=True)], actor=None)
    household = any_county.households["h1"]
    old = monthly_visit(phone, household, 1, visited_at="2026-06-02T10:00:00+08:00")
    results = phone.push([old]).get_json()["results"]
    assert results[0]["status"] == "applied"
    (record,) = [r for r in phone.pull_all() if r["type"] == "form"]
    assert (record["data"]["form_id"], record["data"]["version"]) == ("monthly_monitoring", 2)


def test_answers_are_checked_by_the_rules_of_the_version_they_were_filled_with(
    any_county: Any,
) -> None:
    with any_county.app.app_context():
        publish_forms(actor=None)
        publish_versions([monthly(2, note_required=True)], actor=None)
    phone = any_county.device("cadre_a")
    household = any_county.households["h1"]
    body = phone.push([monthly_visit(phone, household, v) for v in (1, 2)]).get_json()
    old, new = body["results"]
    assert old["status"] == "applied"
    assert new["status"] == "rejected"
    assert new["error"]["details"]["fields"] == {"data.answers.measure_note": ["required"]}


def test_a_visit_naming_an_unpublished_version_is_rejected_with_a_clear_message(
    any_county: Any,
) -> None:
    with any_county.app.app_context():
        publish_forms(actor=None)
    phone = any_county.device("cadre_a")
    result = phone.push([monthly_visit(phone, any_county.households["h1"], 2)]).get_json()
    (outcome,) = result["results"]
    assert outcome["status"] == "rejected"
    assert outcome["error"]["code"] == "validation_failed"
    assert outcome["error"]["details"]["fields"] == {
        "data.answers._form": ["form monthly_monitoring version 2 is not published on this server"]
    }


def test_a_shipped_definition_counts_only_once_it_is_published(tmp_path: Path) -> None:
    app = app_for(f"sqlite:///{tmp_path / 'bare.db'}", tmp_path)
    upgrade(app)  # the schema alone: what db upgrade does before it publishes the shipped forms
    try:
        county = build_county(app)
        phone = county.device("cadre_a")
        household = county.households["h1"]
        answers = {"water_ok": False, "water_issue": "井水浑浊"}
        before = phone.visit(household, form_id="weekly_visit", form_version=1, answers=answers)
        assert phone.push([before]).get_json()["results"][0]["status"] == "rejected"
        with app.app_context():
            publish_forms(actor=None)
        after = phone.visit(household, form_id="weekly_visit", form_version=1, answers=answers)
        assert phone.push([after]).get_json()["results"][0]["status"] == "applied"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_version_published_through_one_app_is_found_by_another_on_the_same_database(
    any_app: Any, tmp_path: Path
) -> None:
    other = app_for(any_app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "other")
    try:
        with other.app_context():
            assert answer_checker()("monthly_monitoring", 2, NEW_MEASURE_WITHOUT_NOTE) == {
                "_form": ["form monthly_monitoring version 2 is not published on this server"]
            }
        with any_app.app_context():
            publish_versions([monthly(2, note_required=True)], actor=None)
        with other.app_context():
            assert answer_checker()("monthly_monitoring", 2, NEW_MEASURE_WITHOUT_NOTE) == {
                "measure_note": ["required"]
            }
    finally:
        with other.app_context():
            db.engine.dispose()


def test_a_version_published_by_another_process_is_found(any_app: Any) -> None:
    url = any_app.config["SQLALCHEMY_DATABASE_URI"]
    answers = {**NEW_MEASURE_WITHOUT_NOTE, "income_changed": False, "monthly_income": 900}
    with any_app.app_context():
        publish_forms(actor=None)
        assert "_form" in answer_checker()("monthly_monitoring", 2, answers)
    env = {**os.environ, "ZOUFANG_DATABASE_URL": url, "ZOUFANG_SECRET_KEY": "cli-test"}
    command = [sys.executable, "-m", "server.cli", "forms", "import-xlsform", str(MONTHLY_XLSFORM)]
    imported = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    with any_app.app_context():
        assert answer_checker()("monthly_monitoring", 2, answers) == {
            "measure_note": ["required"],
            "confirmed": ["required"],
        }
        assert answer_checker()("monthly_monitoring", 1, NEW_MEASURE_WITHOUT_NOTE) == {}


def test_a_published_version_is_read_from_the_database_once_per_app(
    app: Any, tmp_path: Path
) -> None:
    with app.app_context():
        publish_forms(actor=None)
    other = app_for(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "other")
    statements: list[str] = []
    try:
        with other.app_context():
            event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            for _ in range(3):
                assert answer_checker()("weekly_visit", 1, {"water_ok": True}) == {}
            assert published_form("weekly_visit", 9) is None
            assert published_form("weekly_visit", 9) is None
    finally:
        with other.app_context():
            db.engine.dispose()
    form_reads = [s for s in statements if "FROM forms" in s]
    assert len(form_reads) == 3  # one for version 1, then one per miss: misses are not cached


def test_publishing_a_different_definition_under_a_published_version_is_refused(
    any_app: Any,
) -> None:
    with any_app.app_context():
        publish_forms(actor=None)
        head = store().head_version()
        changed = monthly(1, note_required=True)
        with pytest.raises(FormVersionConflict) as refused:
            publish_versions([monthly(2, note_required=True), changed], actor=None)
        assert str(refused.value).startswith(
            "monthly_monitoring version 1: already published with a different definition"
        )
        assert "publish the change as a new version" in str(refused.value)
        assert store().head_version() == head  # nothing published, version 2 neither
        assert published_form("monthly_monitoring", 2) is None
        assert answer_checker()("monthly_monitoring", 1, NEW_MEASURE_WITHOUT_NOTE) == {}


def test_publishing_the_same_definitions_again_publishes_nothing(any_app: Any) -> None:
    with any_app.app_context():  # the fixture's database was migrated, forms published
        assert len(published_versions()) == len(shipped_versions()) == 2
        assert publish_forms(actor=None) == 0
        assert publish_versions([monthly(1, note_required=False)], actor=None) == []


def test_db_upgrade_publishes_the_shipped_form_versions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'z.db'}"
    first = cli(url, "db", "upgrade")
    assert first.exit_code == 0 and "form versions newly published: 2" in first.output
    assert "form versions newly published: 0" in cli(url, "db", "upgrade").output
    listed = json.loads(cli(url, "forms", "list", "--json").output)
    assert [(f["form_id"], f["version"], f["status"]) for f in listed] == [
        ("monthly_monitoring", 1, "published"),
        ("weekly_visit", 1, "published"),
    ]


def test_forms_publish_refuses_a_shipped_file_changed_after_it_was_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'z.db'}"
    assert cli(url, "db", "upgrade").exit_code == 0
    weekly = load_definitions().get("weekly_visit", 1)
    edited = (monthly(1, note_required=True), weekly)
    monkeypatch.setattr("server.admin.forms_service.shipped_versions", lambda: edited)
    for command in (["forms", "publish"], ["db", "upgrade"]):
        refused = cli(url, *command)
        assert refused.exit_code == 1
        assert "monthly_monitoring version 1: already published" in refused.output
    listed = cli(url, "forms", "list").output
    assert "[published; the shipped file differs]" in listed


def test_forms_publish_adds_a_new_shipped_version_next_to_the_published_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'z.db'}"
    assert cli(url, "db", "upgrade").exit_code == 0
    with_v2 = (*shipped_versions(), monthly(2, note_required=True))
    monkeypatch.setattr("server.admin.forms_service.shipped_versions", lambda: with_v2)
    assert "not published" in cli(url, "forms", "list").output
    published = cli(url, "forms", "publish")
    assert published.exit_code == 0 and "newly published: 1" in published.output
    assert "not published" not in cli(url, "forms", "list").output


def test_today_in_a_published_form_is_the_day_of_the_visit_as_the_phone_recorded_it(
    any_app: Any,
) -> None:
    doc = {
        "version": 1,
        "title": {"zh-CN": "日期", "en": "Dates"},
        "fields": [
            {
                "id": "seen_on",
                "type": "date",
                "label": {"zh-CN": "日期", "en": "Date"},
                "constraint": "seen_on <= today()",
            }
        ],
    }
    (form,) = parse_definition({"form_id": "clock_form", "versions": [doc]})
    answers = {"seen_on": "2026-05-01"}
    with any_app.app_context():
        publish_versions([form], actor=None)
        # 00:30 on 1 May in Beijing is still 30 April in UTC: the phone's day counts.
        assert answer_checker()("clock_form", 1, answers, "2026-05-01T00:30:00+08:00") == {}
        assert answer_checker()("clock_form", 1, answers, "2026-04-30T23:59:00+08:00") == {
            "seen_on": ["constraint"]
        }


def counted_form() -> FormVersion:
    doc = {
        "version": 1,
        "title": {"zh-CN": "计数", "en": "Counts"},
        "fields": [
            {"id": "n", "type": "integer", "label": {"zh-CN": "人数", "en": "People"}},
            {"id": "ok", "type": "boolean", "label": {"zh-CN": "正常", "en": "Fine"}},
        ],
    }
    (form,) = parse_definition({"form_id": "counted", "versions": [doc]})
    return form


@pytest.mark.parametrize(
    ("first", "then", "problems"),
    [
        ({"ok": True}, {"ok": 1}, {"ok": ["wrong_type:boolean"]}),
        ({"n": 1}, {"n": True}, {"n": ["wrong_type:integer"]}),
        ({"n": 2}, {"n": 2.5}, {"n": ["wrong_type:integer"]}),
        ({"n": None}, {"n": float("nan")}, {"n": ["wrong_type:integer"]}),
        ({"n": None}, {"n": float("inf")}, {"n": ["wrong_type:integer"]}),
    ],
    ids=["true is not 1", "1 is not true", "2.5 is not 2", "nan is not null", "inf is not null"],
)
def test_answers_equal_in_python_or_in_json_are_checked_each_by_its_own_value(
    app: Any, first: dict[str, Any], then: dict[str, Any], problems: dict[str, list[str]]
) -> None:
    """The checked answers are remembered (forms_service.ANSWERS_MEMO), by a key that tells
    these apart."""
    with app.app_context():
        publish_versions([counted_form()], actor=None)
        assert answer_checker()("counted", 1, first) == {}
        assert answer_checker()("counted", 1, then) == problems
        assert answer_checker()("counted", 1, first) == {}
