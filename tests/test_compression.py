"""The app shell and the admin pages are sent compressed (issue 18 item 10): brotli or gzip as
the browser accepts, `Vary: Accept-Encoding` always, the body decompressing to exactly what an
uncompressed answer holds, and revalidation still answering 304."""

from __future__ import annotations

import gzip

import brotli
import pytest

from server.http.web import PWA

DECOMPRESS = {"br": brotli.decompress, "gzip": gzip.decompress}
PAGES = ["/", "/sw.js", "/manifest.webmanifest", "/admin", "/admin/manage"]
FILES = ["/app/js/app.js", "/app/css/app.css", "/admin/app.js", "/admin/admin.css"]


@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize("url", PAGES + FILES)
def test_a_static_answer_decompresses_to_the_uncompressed_one(client, url, encoding):
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    packed = client.get(url, headers={"Accept-Encoding": f"{encoding}, deflate"})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    assert DECOMPRESS[encoding](packed.data) == plain.data
    assert len(packed.data) < len(plain.data)
    assert int(packed.headers["Content-Length"]) == len(packed.data)
    plain.close()  # the test client leaves a streamed file open until then


def test_a_shell_file_compresses_to_the_file_on_disk(client):
    answer = client.get("/app/js/sync.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert answer.headers["Content-Encoding"] == "br"
    source = (PWA / "js" / "sync.js").read_bytes()
    assert brotli.decompress(answer.data) == source
    assert len(answer.data) < len(source) / 3


def test_a_compressed_file_is_revalidated_with_its_own_etag(client):
    first = client.get("/app/css/app.css", headers={"Accept-Encoding": "gzip"})
    etag = first.headers["ETag"]
    assert etag.endswith('-gzip"')
    again = client.get(
        "/app/css/app.css", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.data == b""
    other = client.get("/app/css/app.css", headers={"Accept-Encoding": "br", "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["Content-Encoding"] == "br"


def test_the_png_icons_are_sent_as_they_are(client):
    icon = client.get("/app/icons/icon-192.png", headers={"Accept-Encoding": "gzip, br"})
    assert icon.status_code == 200 and "Content-Encoding" not in icon.headers
    icon.close()
