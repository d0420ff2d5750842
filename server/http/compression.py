"""Static answers sent compressed: the app shell, the admin pages and their files go
out in brotli or gzip when the browser accepts it, so that a phone installing the app over 2G
or 3G in a village downloads about a third of the bytes. The app does it itself, so that a
deployment without nginx (or with nginx's gzip off) gets it too.

Each body is compressed once and kept (the shell changes only with a deploy); the ETag names
the encoding, so that a revalidation still answers 304 and no cache mixes two encodings of
one URL (``Vary: Accept-Encoding``).
"""

from __future__ import annotations

import functools
import gzip

import brotli
from flask import Response, request

#: the encodings we send, best first
ENCODINGS = ("br", "gzip")
#: the static text worth compressing; the PNG icons are compressed already, and JSON answers
#: are gzipped by server/jsonio.py
COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/manifest+json",
        "image/svg+xml",
    }
)


def compressed(response: Response) -> Response:
    """`response` in the best encoding the request accepts, if it is text worth compressing."""
    if response.mimetype not in COMPRESSIBLE or "Content-Encoding" in response.headers:
        return response
    response.vary.add("Accept-Encoding")
    encoding = next((e for e in ENCODINGS if request.accept_encodings[e] > 0), None)
    if response.status_code != 200 or encoding is None:
        return response
    response.direct_passthrough = False  # send_from_directory streams: read the file's bytes
    body = response.get_data()
    response.close()  # the file it streamed from
    response.set_data(encode(body, encoding))
    response.headers["Content-Encoding"] = encoding
    etag, weak = response.get_etag()
    if etag:
        response.set_etag(f"{etag}-{encoding}", weak)
    return response.make_conditional(request)


@functools.lru_cache(maxsize=256)
def encode(body: bytes, encoding: str) -> bytes:
    """The body compressed at the strongest level: done once per file version, then kept."""
    if encoding == "br":
        return bytes(brotli.compress(body, quality=11))
    return gzip.compress(body, compresslevel=9, mtime=0)
