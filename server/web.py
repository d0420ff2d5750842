"""The PWA's pages: the app shell at / (pwa_static/), the service worker at the root scope."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

PWA = Path(__file__).resolve().parent.parent / "pwa_static"
web = Blueprint("web", __name__)


@web.get("/")
def index() -> Response:
    return send_from_directory(PWA, "index.html", max_age=0)


@web.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}
