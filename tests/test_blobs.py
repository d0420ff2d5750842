"""Photos by content (CONTRACT §11)."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from server.service import store
from server.storage.models import Blob

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"
SHA = hashlib.sha256(JPEG).hexdigest()


def put(device, body=JPEG, sha=SHA, content_type="image/jpeg"):
    return device.client.put(
        f"/api/v1/blobs/{sha}", data=body, content_type=content_type, headers=device.headers
    )


def test_a_photo_is_stored_once_by_its_hash(any_county):
    a = any_county.device("cadre_a")
    assert put(a).status_code == 201
    assert put(a).status_code == 200
    assert a.client.head(f"/api/v1/blobs/{SHA}", headers=a.headers).status_code == 200


def test_bytes_that_do_not_hash_to_the_name_are_refused(county):
    a = county.device("cadre_a")
    response = put(a, sha="0" * 64)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["fields"] == {
        "sha256": ["does not match the SHA-256 of the body"]
    }


def test_a_photo_over_two_megabytes_is_refused(county):
    a = county.device("cadre_a")
    big = b"\xff" * (2 * 1024 * 1024 + 1)
    response = put(a, big, hashlib.sha256(big).hexdigest())
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_head_answers_404_until_the_photo_arrives(county):
    a = county.device("cadre_a")
    response = a.client.head(f"/api/v1/blobs/{SHA}", headers=a.headers)
    assert response.status_code == 404


PHOTO_FORM = {
    "form_id": "house_photo",
    "versions": [
        {
            "version": 1,
            "title": {"zh-CN": "房屋照片", "en": "House photo"},
            "policy": None,
            "fields": [{"id": "photo", "type": "photo", "label": {"zh-CN": "照片", "en": "Photo"}}],
        }
    ],
}


def test_a_photo_is_served_to_whoever_sees_a_visit_that_refers_to_it(app, county):
    from server.admin.forms_service import publish_next_version

    with app.app_context():
        publish_next_version(PHOTO_FORM, actor=None)
    a, b, c = county.device("cadre_a"), county.device("cadre_b"), county.device("cadre_c")
    visit = a.visit(
        county.households["h1"], form_id="house_photo", form_version=1, answers={"photo": SHA}
    )
    assert a.push([visit]).get_json()["results"][0]["status"] == "applied"
    put(a)
    got = b.client.get(f"/api/v1/blobs/{SHA}", headers=b.headers)
    assert got.status_code == 200 and got.data == JPEG and got.mimetype == "image/jpeg"
    assert c.client.get(f"/api/v1/blobs/{SHA}", headers=c.headers).status_code == 404
    pulled = next(r for r in b.pull_all() if r["id"] == visit["id"])
    assert pulled["data"]["photos"] == [SHA]


def test_photos_need_a_token(client):
    assert client.head(f"/api/v1/blobs/{SHA}").status_code == 401


# --- the upload budget and the clean-up (issue 13 item 11) ----------------------------------


class Clock:
    """``app.config["CLOCK"]``: now, moved forward by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def budget(app, **config) -> Clock:
    clock = Clock()
    app.config.update(CLOCK=clock, **config)
    return clock


def photo(n: int) -> tuple[bytes, str]:
    """A distinct small JPEG-ish body and its name."""
    body = JPEG + n.to_bytes(4, "big")
    return body, hashlib.sha256(body).hexdigest()


def put_photo(device, n: int):
    return put(device, *photo(n))


def test_a_device_over_its_hourly_photo_count_gets_429_until_the_hour_has_passed(any_county):
    clock = budget(any_county.app, PHOTOS_PER_HOUR=3)
    a = any_county.device("cadre_a")
    assert [put_photo(a, n).status_code for n in range(3)] == [201, 201, 201]
    clock.advance(minutes=20)

    refused = put_photo(a, 3)
    error = refused.get_json()["error"]
    assert refused.status_code == 429 and error["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == str(40 * 60)
    assert error["details"]["max_photos_per_hour"] == 3
    assert error["details"]["retry_after"] == 40 * 60
    clock.advance(minutes=40, seconds=1)
    assert put_photo(a, 3).status_code == 201


def test_a_device_over_its_daily_bytes_gets_429_until_the_day_has_passed(any_county):
    clock = budget(any_county.app, PHOTO_BYTES_PER_DAY=3 * len(photo(0)[0]))
    a = any_county.device("cadre_a")
    assert [put_photo(a, n).status_code for n in range(3)] == [201, 201, 201]
    clock.advance(hours=23)

    refused = put_photo(a, 3)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(3600)
    assert refused.get_json()["error"]["details"]["max_bytes_per_day"] == 3 * len(photo(0)[0])
    clock.advance(hours=1, seconds=1)
    assert put_photo(a, 3).status_code == 201


def test_each_device_has_its_own_photo_budget(county):
    budget(county.app, PHOTOS_PER_HOUR=1)
    a, b = county.device("cadre_a"), county.device("cadre_b")
    assert put_photo(a, 0).status_code == 201
    assert put_photo(a, 1).status_code == 429
    assert put_photo(b, 1).status_code == 201


def test_a_photo_stored_before_costs_nothing_from_the_budget(county):
    budget(county.app, PHOTOS_PER_HOUR=1)
    a, b = county.device("cadre_a"), county.device("cadre_b")
    assert put_photo(a, 0).status_code == 201
    assert put_photo(b, 1).status_code == 201

    assert put_photo(a, 0).status_code == 200  # the phone's retry of an upload that arrived
    assert put_photo(a, 1).status_code == 200  # the same photo, sent from another phone


def test_concurrent_uploads_of_one_device_never_exceed_its_budget(any_county):
    budget(any_county.app, PHOTOS_PER_HOUR=5)
    a = any_county.device("cadre_a")
    statuses: list[int] = []

    def send(n: int) -> None:
        client = any_county.app.test_client()
        body, sha = photo(n)
        response = client.put(
            f"/api/v1/blobs/{sha}", data=body, content_type="image/jpeg", headers=a.headers
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 5 + [429] * 7


def test_an_upload_records_its_device_time_and_size(any_county):
    clock = budget(any_county.app)
    a = any_county.device("cadre_a")
    body, sha = photo(0)
    put(a, body, sha)
    with any_county.app.app_context(), store().engine.connect() as conn:
        row = conn.execute(select(Blob).where(Blob.sha256 == sha)).one()
    uploaded = (row.device_id, row.created_by, row.created_at, row.size)
    assert uploaded == (
        a.device_id,
        a.user["id"],
        clock.at.astimezone(UTC).replace(tzinfo=None),
        len(body),
    )


def run_cleanup(county) -> dict:
    admin = county.device("admin")
    response = admin.client.post("/api/v1/admin/jobs/photo_cleanup/run", headers=admin.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stored(device, n: int) -> bool:
    head = device.client.head(f"/api/v1/blobs/{photo(n)[1]}", headers=device.headers)
    return head.status_code == 200


def test_the_cleanup_deletes_only_unreferenced_photos_past_the_grace_period(any_county):
    """0 unreferenced, 1 referenced by a visit, 2 by a voided visit — all old; 3 unreferenced
    but recent, its visit may still be on the way."""
    from server.admin.forms_service import publish_next_version

    app = any_county.app
    clock = budget(app, PHOTO_GRACE_DAYS=2)
    with app.app_context():
        publish_next_version(PHOTO_FORM, actor=None)
    a = any_county.device("cadre_a")
    h1 = any_county.households["h1"]
    visits = [
        a.visit(h1, form_id="house_photo", form_version=1, answers={"photo": photo(n)[1]})
        for n in (1, 2)
    ]
    voiding = a.op("void", "visit", visits[1]["id"], {"reason": "录错了户"})
    assert {r["status"] for r in a.push([*visits, voiding]).get_json()["results"]} == {"applied"}
    for n in (0, 1, 2):
        assert put_photo(a, n).status_code == 201
    clock.advance(days=2, hours=1)
    assert put_photo(a, 3).status_code == 201

    result = run_cleanup(any_county)

    assert result["result"]["status"] == "ok"
    assert [stored(a, n) for n in range(4)] == [False, True, True, True]
    clock.advance(days=3)
    run_cleanup(any_county)
    assert [stored(a, n) for n in range(4)] == [False, True, True, False]


def test_a_photo_whose_visit_arrives_within_the_grace_period_is_kept(county):
    from server.admin.forms_service import publish_next_version

    clock = budget(county.app, PHOTO_GRACE_DAYS=2)
    with county.app.app_context():
        publish_next_version(PHOTO_FORM, actor=None)
    a = county.device("cadre_a")
    assert put_photo(a, 0).status_code == 201
    clock.advance(days=1)
    visit = a.visit(
        county.households["h1"],
        form_id="house_photo",
        form_version=1,
        answers={"photo": photo(0)[1]},
    )
    a.push([visit])
    clock.advance(days=30)

    run_cleanup(county)

    assert stored(a, 0)


def test_the_photo_cleanup_is_a_scheduled_job(county):
    admin = county.device("admin")
    listed = admin.client.get("/api/v1/admin/jobs", headers=admin.headers).get_json()["jobs"]
    assert "photo_cleanup" in [job["name"] for job in listed]
