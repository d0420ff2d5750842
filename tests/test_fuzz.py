"""Fuzzing every /api/ operation from its OpenAPI document (issue #7, CONTRACT §2).

Schemathesis generates requests that fit the document and requests that break it, and sends
them through the WSGI app as nobody, as a cadre and as an admin. Whatever arrives, the answer
is never a 500 and never HTML; an error has the §2 shape with a JSON content type, a status
the document lists for the operation, and a body that matches it. A second test sends bytes
that are not what the operation reads at all.

Bounded for CI: a few examples per operation and identity, derandomized (the same requests on
every run), on one SQLite county shared by the module.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.http.errors import STATUS
from server.http.openapi import document
from tests.conftest import _admin, _dispose, _with_database, migrated_app
from tests.county import build_county, uid

OPERATIONS = [
    (method.upper(), path)
    for path, operations in document()["paths"].items()
    for method in operations
]
EXAMPLES = {"anonymous": 3, "cadre": 10, "admin": 10}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: schemathesis reads the bytes as sent: no gzip
PLAIN = {"Accept-Encoding": "identity"}
#: the bodies Flask would parse for these media types, and some it must refuse
MEDIA_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "image/jpeg",
    "",
]
LANGUAGES = ["en", "zh-CN", "fr;q=0.5, en;q=0.9", "*", ";;q=x,", ""]


def bounded(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@dataclass
class Fuzzed:
    """The app under fuzzing, its document as schemathesis reads it, and who may call."""

    app: Any
    schema: Any
    #: the Authorization header of each signed-in identity
    tokens: dict[str, str]
    #: the device each identity pushes as
    devices: dict[str, str]
    #: real ids and values for parameters of these names, so requests reach past the 404s
    known: dict[str, list[str]]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fuzzed(request, sqlite_template, tmp_path_factory) -> Iterator[Fuzzed]:
    """On SQLite and on PostgreSQL, whose text columns refuse what SQLite keeps (NUL)."""
    folder = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        shutil.copy(sqlite_template, folder / "zoufang.db")
        url, drop = f"sqlite:///{folder / 'zoufang.db'}", None
    else:
        server = request.getfixturevalue("postgres_admin_url")
        template = request.getfixturevalue("postgres_template")
        name = f"zoufang_fuzz_{uuid.uuid4().hex[:10]}"
        _admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
        url, drop = _with_database(server, name), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    app = migrated_app(url, folder)
    county = build_county(app)
    cadre, admin = county.device("cadre_a"), county.device("admin")
    spare = county.device("cadre_b", "spare phone")
    problem = uid()
    pushed = cadre.push(
        [
            cadre.visit(county.households["h1"]),
            cadre.op(
                "create",
                "problem",
                problem,
                {
                    "household_id": county.households["h1"],
                    "category": "housing",
                    "description": "屋顶漏雨",
                },
            ),
        ]
    )
    assert [r["status"] for r in pushed.get_json()["results"]] == ["applied", "applied"]
    detail = admin.client.get(
        f"/api/v1/admin/households/{county.households['h1']}", headers=admin.headers
    )
    people = [person["id"] for person in detail.get_json()["people"]]
    yield Fuzzed(
        app=app,
        schema=schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app),
        tokens={"cadre": cadre.headers["Authorization"], "admin": admin.headers["Authorization"]},
        devices={"cadre": cadre.device_id, "admin": admin.device_id},
        known={
            "region_id": list(county.regions.values()),
            "household_id": list(county.households.values()),
            "person_id": people,
            "problem_id": [problem],
            # not the fuzzing users, who must stay signed in
            "user_id": [county.users[name] for name in ("cadre_b", "cadre_c", "sup_east")],
            "device_id": [spare.device_id],
            "period": ["2026-W47", "2026-11", "2026-W53", "2026-00"],
            "until": ["2026-W47", "2026-11-24"],
            "as_of": ["2026-11-24T10:00:00+08:00", "2026-11-24"],
        },
    )
    _dispose(app)
    if drop:
        _admin(server, drop)


def with_known_values(
    case: Any, known: dict[str, list[str]], device: str | None, data: st.DataObject
) -> None:
    """Replace some path and query values by real ones, and a push's device_id by the caller's
    own: a random id mostly finds nothing, and a push for another device is refused."""
    for container in (case.path_parameters, case.query):
        if not isinstance(container, dict):
            continue
        for name in list(container):
            if name in known and data.draw(st.booleans(), label=f"real {name}"):
                container[name] = data.draw(st.sampled_from(known[name]), label=name)
    pushing = device and isinstance(case.body, dict) and "device_id" in case.body
    if pushing and data.draw(st.booleans(), label="own device"):
        case.body["device_id"] = device


def html_page(method: str, path: str, status: int) -> bool:
    """The one HTML answer under /api/: the documentation page, for people."""
    answer = document()["paths"][path][method.lower()]["responses"].get(str(status), {})
    return "text/html" in answer.get("content", {})


def assert_contract_answer(
    method: str, path: str, status: int, headers: dict[str, Any], body: bytes
) -> None:
    """CONTRACT §2: no 500, no HTML, and every error in the one JSON shape."""
    content_type = (headers.get("content-type") or [""])[0]
    assert status < 500, (status, body[:500])
    if status < 400 and html_page(method, path, status):
        return
    assert "html" not in content_type and not body.lstrip()[:15].lower().startswith(
        (b"<!doctype", b"<html")
    ), (status, content_type, body[:200])
    if status < 400:
        return
    assert content_type.split(";")[0] == "application/json", (status, content_type)
    if method == "HEAD":
        return  # a HEAD answer has the headers of the GET and no body
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert STATUS[error["code"]] == status, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error


@pytest.mark.parametrize("identity", list(EXAMPLES))
@pytest.mark.parametrize("method, path", OPERATIONS)
def test_generated_requests_get_contract_answers(fuzzed, method, path, identity):
    operation = fuzzed.schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @bounded(EXAMPLES[identity])
    @given(case=strategy, data=st.data())
    def fuzz(case, data):
        with_known_values(case, fuzzed.known, fuzzed.devices.get(identity), data)
        if identity in fuzzed.tokens:  # whatever schemathesis made of the bearer header
            case.headers = {**(case.headers or {}), "Authorization": fuzzed.tokens[identity]}
        response = case.call(headers=PLAIN)
        assert_contract_answer(
            method, path, response.status_code, response.headers, response.content
        )
        case.validate_response(response, checks=CHECKS, headers=PLAIN)

    fuzz()


@pytest.mark.parametrize("method, path", [(m, p) for m, p in OPERATIONS if m != "HEAD"])
def test_bodies_that_are_not_what_the_operation_reads_get_contract_answers(fuzzed, method, path):
    """As an admin, who gets furthest: any bytes, under any media type and language."""
    client = fuzzed.app.test_client()
    url = path.format_map(
        {name: uid() for name in ("device_id", "conflict_id", "problem_id")}
        | {
            "region_id": fuzzed.known["region_id"][0],
            "household_id": fuzzed.known["household_id"][0],
            "person_id": fuzzed.known["person_id"][0],
            "user_id": fuzzed.known["user_id"][0],
            "sha256": "0" * 64,
            "name": "no_such_job",
            "channel": "wecom",
            "period": "2026-W47",
            "visit_id": uid(),
            "form_id": "weekly_visit",
            "version": "1",
        }
    )

    @bounded(10)
    @given(
        body=st.one_of(
            st.binary(max_size=300),
            st.text(max_size=100).map(str.encode),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4)
                ),
                max_leaves=10,
            ).map(lambda value: json.dumps(value).encode()),
        ),
        media_type=st.sampled_from(MEDIA_TYPES),
        language=st.sampled_from(LANGUAGES),
        query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
    )
    def fuzz(body, media_type, language, query):
        headers = {
            "Authorization": fuzzed.tokens["admin"],
            "Content-Type": media_type,
            "Accept-Language": language,
        }
        response = client.open(url, method=method, data=body, headers=headers, query_string=query)
        response_headers = {k.lower(): [v] for k, v in response.headers.items()}
        assert_contract_answer(method, path, response.status_code, response_headers, response.data)

    fuzz()
