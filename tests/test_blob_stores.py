"""Photos' bytes in each store (server/storage/blobstore.py): the database, a directory, and
S3-compatible object storage — a real S3 server (moto's) started here on 127.0.0.1.

The same contract runs against every store, on SQLite and on PostgreSQL: HEAD, PUT and GET
answer alike, only where the bytes live (and, for S3, that GET is a redirect) differs.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from server.admin.forms_service import publish_forms, publish_next_version
from server.cli import main
from server.service import store
from server.storage.blobstore import (
    BlobStoreDown,
    DirectoryBlobs,
    S3Blobs,
    blob_store,
    move_out_of_database,
)
from server.storage.models import Blob
from tests.conftest import _dispose, app_for
from tests.county import County, build_county
from tests.test_blobs import JPEG, PHOTO_FORM, SHA, photo, put, put_photo

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, with the credentials boto3 reads."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS.items():
            patch.setenv(name, value)
        yield f"http://{host}:{port}"
    server.stop()


def s3_config(endpoint: str, **extra: Any) -> dict[str, Any]:
    """A fresh bucket of its own for one test."""
    import boto3

    bucket = f"photos-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return {"BLOB_STORE": f"s3://{bucket}/county-1", "S3_ENDPOINT_URL": endpoint, **extra}


@pytest.fixture(params=["database", "directory", "s3"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "database":
        return {"BLOB_STORE": "database"}
    if request.param == "directory":
        return {"BLOB_STORE": f"directory:{tmp_path / 'photos'}"}
    return s3_config(request.getfixturevalue("s3_endpoint"))


def photo_app(url: str, instance: Path, **config: Any) -> Any:
    app = app_for(url, instance, **config)
    with app.app_context():
        publish_forms(actor=None)
        publish_next_version(PHOTO_FORM, actor=None)
    return app


@pytest.fixture
def county(database_url: str, store_config: dict[str, Any], tmp_path: Path) -> Iterator[County]:
    """The small county with the photo form, its photos in each store, on each database."""
    app = photo_app(database_url, tmp_path, **store_config)
    yield build_county(app)
    _dispose(app)


def bytes_in_store(app: Any) -> dict[str, bytes]:
    """Every file or object the store holds, by name (a directory's temporary files too)."""
    with app.app_context():
        where = blob_store()
        if isinstance(where, DirectoryBlobs):
            files = [p for p in where.root.rglob("*") if p.is_file()] if where.root.exists() else []
            return {p.name: p.read_bytes() for p in files}
        if isinstance(where, S3Blobs):
            listed = where.client.list_objects_v2(Bucket=where.bucket).get("Contents", [])
            return {
                item["Key"]: where.client.get_object(Bucket=where.bucket, Key=item["Key"])[
                    "Body"
                ].read()
                for item in listed
            }
        with store().engine.connect() as conn:
            rows = conn.execute(select(Blob.sha256, Blob.content)).all()
        return {row.sha256: row.content for row in rows if row.content is not None}


def has_bytes(app: Any, sha: str) -> bool:
    with app.app_context(), store().engine.connect() as conn:
        return blob_store().exists(conn, sha)


def fetch(device: Any, sha: str) -> tuple[int, bytes]:
    """GET a photo as a phone does: following a redirect to the bucket, without the token."""
    response = device.client.get(f"/api/v1/blobs/{sha}", headers=device.headers)
    if response.status_code != 307:
        return response.status_code, response.data
    with urllib.request.urlopen(response.headers["Location"]) as answer:  # noqa: S310
        return answer.status, answer.read()


def visit_with_photo(county: County, sha: str = SHA) -> None:
    a = county.device("cadre_a")
    visit = a.visit(
        county.households["h1"], form_id="house_photo", form_version=1, answers={"photo": sha}
    )
    assert a.push([visit]).get_json()["results"][0]["status"] == "applied"


# --- the contract, in every store on every database ------------------------------------------


def test_a_stored_photo_is_answered_by_head_and_get_in_every_store(county):
    visit_with_photo(county)
    a, b = county.device("cadre_a"), county.device("cadre_b")
    assert put(a).status_code == 201
    assert a.client.head(f"/api/v1/blobs/{SHA}", headers=a.headers).status_code == 200
    assert fetch(b, SHA) == (200, JPEG)
    assert list(bytes_in_store(county.app).values()) == [JPEG]
    assert has_bytes(county.app, SHA)


def test_a_photo_sent_twice_is_stored_once_in_every_store(county):
    a, b = county.device("cadre_a"), county.device("cadre_b")
    assert [put(a).status_code, put(a).status_code, put(b).status_code] == [201, 200, 200]
    assert list(bytes_in_store(county.app).values()) == [JPEG]


def test_bytes_that_do_not_hash_to_the_name_leave_nothing_in_any_store(county):
    a = county.device("cadre_a")
    assert put(a, sha="0" * 64).status_code == 422
    assert a.client.head(f"/api/v1/blobs/{'0' * 64}", headers=a.headers).status_code == 404
    assert bytes_in_store(county.app) == {}
    assert not has_bytes(county.app, "0" * 64) and not has_bytes(county.app, SHA)


def test_a_photo_over_two_megabytes_leaves_nothing_in_any_store(county):
    big = b"\xff" * (2 * 1024 * 1024 + 1)
    assert put(county.device("cadre_a"), big, hashlib.sha256(big).hexdigest()).status_code == 413
    assert bytes_in_store(county.app) == {}


def test_a_caller_outside_the_scope_gets_404_and_no_redirect_in_every_store(county):
    visit_with_photo(county)
    put(county.device("cadre_a"))
    c = county.device("cadre_c")
    response = c.client.get(f"/api/v1/blobs/{SHA}", headers=c.headers)
    assert response.status_code == 404 and "Location" not in response.headers
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_cleanup_deletes_the_bytes_with_the_row_in_every_store(county):
    from tests.test_blobs import budget, run_cleanup

    clock = budget(county.app, PHOTO_GRACE_DAYS=2)
    a = county.device("cadre_a")
    visit_with_photo(county, photo(1)[1])
    assert [put_photo(a, 0).status_code, put_photo(a, 1).status_code] == [201, 201]
    clock.advance(days=3)

    run_cleanup(county)

    assert [name[-64:] for name in bytes_in_store(county.app)] == [photo(1)[1]]
    assert not has_bytes(county.app, photo(0)[1]) and has_bytes(county.app, photo(1)[1])


# --- S3: the GET is a redirect to a short-lived signed URL ------------------------------------


@pytest.fixture
def s3_county(app_url: str, s3_endpoint: str, tmp_path: Path) -> Iterator[County]:
    app = photo_app(app_url, tmp_path, **s3_config(s3_endpoint, BLOB_URL_SECONDS=90))
    yield build_county(app)
    _dispose(app)


@pytest.fixture
def app_url(sqlite_url: str) -> str:
    return sqlite_url


def test_s3_get_redirects_in_scope_to_a_signed_url_of_the_bucket_valid_for_the_setting(
    s3_county, s3_endpoint
):
    visit_with_photo(s3_county)
    put(s3_county.device("cadre_a"))
    b = s3_county.device("cadre_b")

    response = b.client.get(f"/api/v1/blobs/{SHA}", headers=b.headers)

    assert response.status_code == 307
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == s3_endpoint
    assert parse_qs(location.query)["X-Amz-Expires"] == ["90"]
    assert response.headers["Cache-Control"] == "no-store"


def test_the_bucket_answers_a_signed_url_with_the_photo_and_no_caching(s3_county):
    visit_with_photo(s3_county)
    put(s3_county.device("cadre_a"))
    b = s3_county.device("cadre_b")
    location = b.client.get(f"/api/v1/blobs/{SHA}", headers=b.headers).headers["Location"]

    with urllib.request.urlopen(location) as answer:  # noqa: S310
        assert answer.read() == JPEG
        assert answer.headers["Content-Type"] == "image/jpeg"
        assert answer.headers["Cache-Control"] == "no-store"


def test_s3_keeps_each_photo_under_the_configured_prefix(s3_county):
    put(s3_county.device("cadre_a"))
    assert list(bytes_in_store(s3_county.app)) == [f"county-1/{SHA}"]


def test_pages_may_fetch_photos_from_the_bucket_origin(s3_county, s3_endpoint):
    with s3_county.app.test_client().get("/admin/visits") as page:
        policy = page.headers["Content-Security-Policy"]
    connect = next(part for part in policy.split(";") if part.strip().startswith("connect-src"))
    assert connect.split() == ["connect-src", "'self'", s3_endpoint]


def test_pages_connect_to_their_own_origin_alone_without_a_bucket(tmp_path, sqlite_url):
    app = app_for(sqlite_url, tmp_path, BLOB_STORE=f"directory:{tmp_path}")
    with app.test_client().get("/admin/visits") as page:
        policy = page.headers["Content-Security-Policy"]
    assert "connect-src 'self';" in policy
    _dispose(app)


def test_an_unreachable_bucket_answers_503_and_stores_no_row(tmp_path, sqlite_url):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS.items():
            patch.setenv(name, value)
        app = photo_app(sqlite_url, tmp_path, BLOB_STORE="s3://gone", S3_ENDPOINT_URL=dead)
        a = build_county(app).device("cadre_a")
        response = put(a)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert response.get_json()["error"]["code"] == "unavailable"
    assert a.client.head(f"/api/v1/blobs/{SHA}", headers=a.headers).status_code == 404
    _dispose(app)


# --- the directory: whole photos or none ------------------------------------------------------


def test_a_failure_before_the_rename_leaves_no_file_under_the_photos_name(
    tmp_path, sqlite_url, monkeypatch
):
    root = tmp_path / "photos"
    app = photo_app(sqlite_url, tmp_path, BLOB_STORE=f"directory:{root}")
    a = build_county(app).device("cadre_a")
    final = DirectoryBlobs(root).path(SHA)
    written: list[bytes] = []

    def crash(source: str, target: str) -> None:
        written.append(Path(source).read_bytes())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    response = put(a)
    monkeypatch.undo()

    assert written == [JPEG]  # the whole photo was in the temporary file
    assert response.status_code == 503
    assert not final.exists() and bytes_in_store(app) == {}
    assert a.client.head(f"/api/v1/blobs/{SHA}", headers=a.headers).status_code == 404
    assert put(a).status_code == 201 and final.read_bytes() == JPEG
    _dispose(app)


def test_the_directory_keeps_each_photo_under_two_levels_of_folders(tmp_path):
    where = DirectoryBlobs(tmp_path)
    where.put(None, SHA, JPEG, "image/jpeg")  # type: ignore[arg-type]
    assert (tmp_path / SHA[:2] / SHA[2:4] / SHA).read_bytes() == JPEG


# --- moving photos out of the database ---------------------------------------------------------


@pytest.fixture
def photos_in_database(database_url: str, tmp_path: Path) -> Iterator[tuple[str, County]]:
    """Three photos stored while the database was the store; cadre_a's visit refers to 0."""
    app = photo_app(database_url, tmp_path / "before")
    county = build_county(app)
    visit_with_photo(county, photo(0)[1])
    for n in range(3):
        assert put_photo(county.device("cadre_a"), n).status_code == 201
    yield database_url, county
    _dispose(app)


def test_migrate_moves_every_photo_out_of_the_rows_and_they_are_still_served(
    photos_in_database, tmp_path
):
    url, before = photos_in_database
    root = tmp_path / "photos"
    app = app_for(url, tmp_path, BLOB_STORE=f"directory:{root}")
    b = before.device("cadre_b")
    b.client = app.test_client()
    assert fetch(b, photo(0)[1]) == (200, photo(0)[0])  # still in its row

    with app.app_context():
        assert move_out_of_database(store().engine, blob_store(), batch=2) == (
            3,
            sum(len(photo(n)[0]) for n in range(3)),
        )
        assert move_out_of_database(store().engine, blob_store()) == (0, 0)

    assert bytes_in_store(before.app) == {}  # the rows let go of the bytes
    assert sorted(bytes_in_store(app).values()) == sorted(photo(n)[0] for n in range(3))
    assert fetch(b, photo(0)[1]) == (200, photo(0)[0])
    _dispose(app)


def test_a_migrate_stopped_midway_loses_nothing_and_a_second_run_finishes(
    photos_in_database, tmp_path
):
    url, before = photos_in_database
    target = DirectoryBlobs(tmp_path / "photos")
    puts = 0

    class FailsOnTheSecond(DirectoryBlobs):
        def put(self, conn, sha256, content, content_type):
            nonlocal puts
            puts += 1
            if puts == 2:
                raise BlobStoreDown("disk full")
            super().put(conn, sha256, content, content_type)

    with before.app.app_context():
        engine = store().engine
        with pytest.raises(BlobStoreDown):
            move_out_of_database(engine, FailsOnTheSecond(target.root), batch=1)
        assert len(bytes_in_store(before.app)) == 2  # one moved, two still in their rows
        assert move_out_of_database(engine, target)[0] == 2
    assert bytes_in_store(before.app) == {}
    assert len(list(target.root.rglob("*.part"))) == 0
    assert {p.name for p in target.root.rglob("*") if p.is_file()} == {
        photo(n)[1] for n in range(3)
    }


def test_zoufang_blobs_migrate_moves_photos_and_refuses_the_database_as_target(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    env = {"ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "cli-test"}
    runner = CliRunner(env=env)
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    app = photo_app(database, tmp_path)
    put_photo(build_county(app).device("cadre_a"), 0)
    _dispose(app)

    refused = runner.invoke(main, ["blobs", "migrate"])
    assert refused.exit_code == 1 and "BLOB_STORE is database" in refused.output
    env["ZOUFANG_BLOB_STORE"] = f"directory:{tmp_path / 'photos'}"
    moved = CliRunner(env=env).invoke(main, ["blobs", "migrate"], catch_exceptions=False)
    assert moved.exit_code == 0
    assert moved.output.strip() == f'{{"moved": 1, "bytes": {len(photo(0)[0])}}}'
