"""The PWA (pwa_static/): the page at /, the service worker and manifest at the root scope, the
rest of the app shell under /app/.

The service worker caches the shell under a version. By default the version is a hash of the
shell's files, so every deploy that changes one of them is a new version that phones install
in the background; the config option ``PWA_VERSION`` names a version instead (tests flip it).
Nothing here answers an /api/ path: those stay with the API's JSON errors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, send_from_directory

from server.http.compression import compressed
from server.storage.blobstore import blob_store

PWA = Path(__file__).resolve().parents[2] / "pwa_static"
#: the folders of pwa_static/ whose files make up the shell, and the kinds of file served
SHELL_FOLDERS = ("js", "css", "icons")
SHELL_SUFFIXES = (".js", ".css", ".png", ".svg")
#: the shell runs without inline scripts, inline styles or eval; this keeps it that way
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page_policy() -> str:
    """CSP, and the photo bucket's origin among those pages may fetch from: a photo's GET
    redirects there (server/storage/blobstore.py)."""
    bucket = blob_store().origin
    return CSP.replace("connect-src 'self'", f"connect-src 'self' {bucket}") if bucket else CSP


web = Blueprint("web", __name__)
#: the shell and the admin pages go out in brotli or gzip (server/http/compression.py)
web.after_request(compressed)


def shell_files() -> list[str]:
    """The shell's files under pwa_static/, as relative paths (tests and tools excluded)."""
    found = []
    for folder in SHELL_FOLDERS:
        for path in sorted((PWA / folder).rglob("*")):
            relative = path.relative_to(PWA)
            if (
                path.is_file()
                and path.suffix in SHELL_SUFFIXES
                and not path.name.endswith((".test.js", ".test.mjs"))
                and not {"test", "tests"} & set(relative.parts)
            ):
                found.append(relative.as_posix())
    return found


def shell_urls() -> list[str]:
    """Every URL the service worker precaches: the page, the manifest and the shell files."""
    return ["/", "/manifest.webmanifest", *(f"/app/{name}" for name in shell_files())]


def shell_version() -> str:
    """``PWA_VERSION`` if set, else a hash of every file the service worker serves."""
    configured = current_app.config.get("PWA_VERSION")
    if configured:
        return str(configured)
    digest = hashlib.sha256()
    for name in ["index.html", "manifest.webmanifest", "sw.js", *shell_files()]:
        digest.update(name.encode() + b"\0" + (PWA / name).read_bytes())
    return digest.hexdigest()[:12]


def _no_cache(response: Response) -> Response:
    """Always revalidated: the service worker, not the HTTP cache, keeps the shell offline."""
    response.headers["Cache-Control"] = "no-cache"
    return response


@web.get("/")
def index() -> Response:
    """index.html with a modulepreload link per module: the browser fetches every module at
    once instead of discovering them import by import (three round trips through the cache)."""
    preload = "\n".join(
        f'<link rel="modulepreload" href="/app/{name}">'
        for name in shell_files()
        if name.endswith(".js")
    )
    source = (PWA / "index.html").read_text(encoding="utf-8")
    response = Response(source.replace("<!--modulepreload-->", preload, 1), mimetype="text/html")
    response.headers["Content-Security-Policy"] = page_policy()
    return _no_cache(response)


@web.get("/sw.js")
def service_worker() -> Response:
    """sw.js with its version and precache list filled in."""
    source = (PWA / "sw.js").read_text(encoding="utf-8")
    source = source.replace('"__SHELL_VERSION__"', json.dumps(shell_version()), 1)
    source = source.replace('["__SHELL_FILES__"]', json.dumps(shell_urls()), 1)
    return _no_cache(Response(source, mimetype="text/javascript"))


@web.get("/manifest.webmanifest")
def manifest() -> Response:
    response = send_from_directory(PWA, "manifest.webmanifest", max_age=0)
    response.mimetype = "application/manifest+json"
    return _no_cache(response)


@web.get("/app/<path:name>")
def shell_file(name: str) -> Response:
    if name not in shell_files():
        abort(404)
    return _no_cache(send_from_directory(PWA, name, max_age=0))


#: the supervisors' dashboard (pwa_static/admin/): the page at /admin, its files under /admin/
ADMIN = PWA / "admin"
ADMIN_SUFFIXES = (".js", ".css")


@web.get("/admin")
@web.get("/admin/")
def admin_index() -> Response:
    """The dashboard's page, under the same policy as the PWA (no inline script, style or eval)."""
    response = send_from_directory(ADMIN, "index.html", max_age=0)
    response.headers["Content-Security-Policy"] = page_policy()
    return _no_cache(response)


@web.get("/admin/manage")
def admin_manage() -> Response:
    """The administration page (roster, households, users, 包保, visit policy, forms)."""
    response = send_from_directory(ADMIN, "manage.html", max_age=0)
    response.headers["Content-Security-Policy"] = page_policy()
    return _no_cache(response)


@web.get("/admin/visits")
def admin_visits() -> Response:
    """The visits behind the coverage: a village's list, one visit, one household."""
    response = send_from_directory(ADMIN, "visits.html", max_age=0)
    response.headers["Content-Security-Policy"] = page_policy()
    return _no_cache(response)


#: the form preview is framed by the administration page itself, and by nothing else
PREVIEW_CSP = CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


@web.get("/admin/form-preview")
def admin_form_preview() -> Response:
    """A form as a phone renders it, shown in a frame of the administration page."""
    response = send_from_directory(ADMIN, "form-preview.html", max_age=0)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return _no_cache(response)


@web.get("/admin/<path:name>")
def admin_file(name: str) -> Response:
    path = (ADMIN / name).resolve()
    if not (path.is_file() and path.is_relative_to(ADMIN) and path.suffix in ADMIN_SUFFIXES):
        abort(404)
    return _no_cache(send_from_directory(ADMIN, name, max_age=0))


@web.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}
