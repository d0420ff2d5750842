"""A photo in object storage, seen in the dashboard (issue 17 item 3): the page fetches
``/api/v1/blobs/<sha256>`` with its token, the app answers a redirect to a signed URL of the
bucket — another origin — and headless Chromium follows it under the page's CSP, without
carrying the token there, and shows the picture."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest

from server.admin.forms_service import publish_forms, publish_next_version
from tests.browser.test_dashboard import open_dashboard, this_week_moment
from tests.conftest import _dispose, app_for
from tests.county import PASSWORD
from tests.test_blob_stores import s3_config, s3_endpoint  # noqa: F401 (a fixture)
from tests.test_blobs import PHOTO_FORM

pytestmark = pytest.mark.browser


def one_pixel_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1×1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xcc\x33\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path, s3_endpoint: str) -> Iterator[Any]:  # noqa: F811
    """The app the ``live`` fixture serves, its photos in moto's S3 on another port."""
    application = app_for(sqlite_url, tmp_path, **s3_config(s3_endpoint))
    with application.app_context():
        publish_forms(actor=None)
        publish_next_version(PHOTO_FORM, actor=None)
    yield application
    _dispose(application)


def test_the_dashboard_shows_a_photo_the_app_redirects_to_the_bucket_for(
    live,
    browser,
    s3_endpoint,  # noqa: F811
):
    png = one_pixel_png()
    name = sha256(png).hexdigest()
    a = live.county.device("cadre_a")
    visit = a.visit(
        live.county.households["h1"], this_week_moment(), form_id="house_photo",
        form_version=1, answers={"photo": name},
    )  # fmt: skip
    assert a.push([visit]).get_json()["results"][0]["status"] == "applied"
    stored = a.client.put(
        f"/api/v1/blobs/{name}", data=png, content_type="image/png", headers=a.headers
    )
    assert stored.status_code == 201
    errors: list[str] = []
    context, page = open_dashboard(live, browser, errors)
    bucket_requests: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: (
            request.url.startswith(s3_endpoint) and bucket_requests.append(request.all_headers())
        ),
    )
    page.fill("#signin [name=username]", "sup_east")
    page.fill("#signin [name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("body[data-loaded]:not(.loading)", state="attached")

    page.goto(f"{live.url}/admin/visits?visit={visit['id']}")
    image = page.wait_for_selector("#visit-photos img")
    page.wait_for_function("img => img.complete && img.naturalWidth === 1", arg=image)

    assert bucket_requests and all("authorization" not in h for h in bucket_requests)
    assert page.evaluate("window.__violations") == []
    assert errors == []
    context.close()
