"""Browser fixtures: the app served from the test process, and Debian's Chromium driven by
Playwright. Without /usr/bin/chromium the browser tests skip and say why — except in CI
(CI=true), where they fail.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from server.admin.forms_service import publish_forms
from tests.county import County

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: the phone the app is designed for: 360 × 740 CSS pixels
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 1, "locale": "zh-CN"}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Live:
    """The app on a real port, with the county, and faults a test can switch on."""

    url: str
    app: Any
    county: County
    #: "sync" → every /api/v1/sync/ request answers 503, as a server that is down
    faults: set[str] = field(default_factory=set)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the browser tests: {reason}")
        print(f"skipping browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture
def launch_persistent(playwright: Any) -> Iterator[Any]:
    """Open Chromium on a profile folder, as a phone's browser keeps its storage on disk."""
    opened: list[Any] = []

    def launch(profile: Path, **options: Any) -> Any:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, **PHONE, **options
        )
        opened.append(context)
        return context

    yield launch
    for context in opened:
        context.close()


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        """Hundreds of requests per test: only failures are worth reading."""


@pytest.fixture
def live(app: Any, county: County) -> Iterator[Live]:
    with app.app_context():
        publish_forms(actor=None)
    app.config["PWA_VERSION"] = "v1"
    faults: set[str] = set()

    @app.before_request
    def injected_faults() -> Any:
        if "sync" in faults and request.path.startswith("/api/v1/sync/"):
            message = "服务器内部错误，数据未丢失，请稍后重试"  # what the server says then
            return jsonify(error={"code": "internal_error", "message": message}), 503
        return None

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", app, county, faults)
    server.shutdown()
    thread.join()


@pytest.fixture
def screenshot() -> Any:
    """Save a screenshot of the page as tests/screenshots/<name>.png (gitignored); with
    ZOUFANG_DOCS_SCREENSHOTS=1 also as docs/screenshots/<name>.png, the pictures the docs show
    (so that an ordinary test run leaves the tree as it was)."""
    folders = [SCREENSHOTS]
    if os.environ.get("ZOUFANG_DOCS_SCREENSHOTS") == "1":
        folders.append(DOCS_SCREENSHOTS)

    def take(page: Any, name: str) -> None:
        page.evaluate("document.getElementById('toast').hidden = true")
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{name}.png"))

    return take
