"""Photos by content (CONTRACT §11)."""

from __future__ import annotations

import hashlib

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
    from server.forms_service import publish_next_version

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
