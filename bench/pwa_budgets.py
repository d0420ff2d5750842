"""The PWA's budgets (issue 4), measured in Debian's Chromium; run by hand.

    .venv/bin/python bench/pwa_budgets.py              # all four, appends a run to bench/README.md
    .venv/bin/python bench/pwa_budgets.py --no-readme  # prints only

One cadre covers 500 households (1,200 people, a few weeks of visits) on a server started
here (SQLite in a temporary folder, werkzeug on 127.0.0.1). Then:

1. **App shell ≤ 150 KB gzip**: every file the service worker precaches, and sw.js, each
   gzipped at level 6 (a web server's usual setting), summed.
2. **First render from cache < 1 s on a 4× CPU-throttled Chromium**: signed in and synced
   once, then offline with CDP ``Emulation.setCPUThrottlingRate`` 4; each reload is timed from
   navigation start to the app's ``zoufang:first-render`` mark — the 本周走访 list of all 500
   households, drawn from the service worker's cache and IndexedDB. Median of 5.
3. **1,000 queued visits sync over slow 3G in < 30 s**: 1,000 visits as the visit screen
   makes them are queued offline; then the phone comes back online under CDP
   ``Network.emulateNetworkConditions`` with DevTools' "Slow 3G" figures (2,000 ms latency,
   50,000 bytes/s each way) and the app syncs by itself, as a tap on 立即同步 would. Timed
   from the ``online`` event to the end of the sync, and split into push (all 1,000 ops
   acknowledged) and pull (the server's copies coming back).
   Then the same again with the API's JSON answers gzipped by a WSGI wrapper in this script:
   not something the server does today, measured to size the suggestion.
4. **500 households stay smooth**: the week screen's render time at 1× and 4×, and frame
   times while a touch scroll (CDP ``Input.synthesizeScrollGesture``) runs down the list at
   4×, from requestAnimationFrame deltas.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from server import create_app  # noqa: E402
from server.admin.accounts import create_user  # noqa: E402
from server.admin.forms_service import publish_forms  # noqa: E402
from server.http.web import PWA, shell_urls  # noqa: E402
from server.service import create_server_records  # noqa: E402
from server.storage.upgrade import upgrade  # noqa: E402
from tests.browser.conftest import ARGS, CHROMIUM, PHONE  # noqa: E402

README = ROOT / "bench" / "README.md"
SECTION = "## pwa_budgets.py — the PWA's budgets in Chromium"
SLOW_3G = {
    "offline": False,
    "latency": 2000,
    "downloadThroughput": 50_000,
    "uploadThroughput": 50_000,
}
FAST = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
CHINA = timezone(timedelta(hours=8))
PASSWORD = "budget-pass"
FLAGS = ["elderly", "frail", "sick", "disabled", "orphan", "alone", "left_behind"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "德明秀英建国桂兰志强玉梅春华海燕永红丽娟小军"


class Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        """Thousands of requests: none worth printing."""


class GzipAnswers:
    """Gzip the API's JSON answers when switched on: what the server would gain if it did."""

    def __init__(self, wsgi: Any) -> None:
        self.wsgi, self.on = wsgi, False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        wanted = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        if not (self.on and wanted and environ["PATH_INFO"].startswith("/api/")):
            return self.wsgi(environ, start_response)
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer.update(status=status, headers=headers)
            return lambda data: None

        body = gzip.compress(b"".join(self.wsgi(environ, capture)), 6)
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        headers += [
            ("Content-Encoding", "gzip"),
            ("Content-Length", str(len(body))),
            ("Vary", "Accept-Encoding"),
        ]
        start_response(answer["status"], headers)
        return [body]


def build_county(app: Any, households: int, rng: random.Random) -> None:
    """One village cadre with `households` households, their people and a few weeks of visits."""
    ids = {level: str(uuid.uuid4()) for level in ("county", "township", "village")}
    parents = {"county": None, "township": ids["county"], "village": ids["township"]}
    names = {"county": "青山县", "township": "东河镇", "village": "上村"}
    items: list[tuple[str, str, dict[str, Any]]] = [
        ("region", ids[level], {"parent_id": parents[level], "level": level, "name": names[level]})
        for level in ids
    ]
    now = datetime.now(CHINA)

    def name() -> str:
        return rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)

    for index in range(households):
        household = str(uuid.uuid4())
        items.append(
            (
                "household",
                household,
                {
                    "village_id": ids["village"],
                    "code": f"3418231010{index:04d}",
                    "head_name": name(),
                    "address": f"{index % 12 + 1}组",
                    "phone": f"139{rng.randrange(10**8):08d}",
                    "category": rng.choice(["脱贫户", "监测户", "边缘户", "一般户"]),
                    "status": "active",
                    "visit_policy": "weekly",
                    "lat": None,
                    "lon": None,
                    "notes": None,
                },
            )
        )
        for _ in range(rng.choice([1, 2, 2, 3])):
            flags = rng.sample(FLAGS, rng.choice([0, 1, 1, 2]))
            items.append(
                (
                    "person",
                    str(uuid.uuid4()),
                    {
                        "household_id": household,
                        "name": name(),
                        "gender": rng.choice("男女"),
                        "birth_year": rng.randrange(1930, 2015),
                        "relation": "户主",
                        "flags": flags,
                        "id_number": None,
                        "phone": None,
                        "notes": None,
                    },
                )
            )
        for _ in range(rng.randrange(0, 4)):
            at = now - timedelta(days=rng.uniform(0, 20))
            items.append(
                (
                    "visit",
                    str(uuid.uuid4()),
                    {
                        "household_id": household,
                        "visitor_id": None,
                        "device_id": None,
                        "visited_at": at.isoformat(timespec="seconds"),
                        "visited_at_effective": at.isoformat(timespec="seconds"),
                        "received_at": at.isoformat(timespec="seconds"),
                        "mode": "home",
                        "form_id": "weekly_visit",
                        "form_version": 1,
                        "answers": {"food_ok": True},
                        "people_seen": [],
                        "location": None,
                        "notes": None,
                        "corrects": None,
                        "voided": False,
                        "void_reason": None,
                        "review": [],
                    },
                )
            )
    with app.app_context():
        publish_forms(actor=None)
        create_server_records(items, actor=None)
        create_user("budget_cadre", PASSWORD, "cadre", [ids["village"]], [], "测试干部")


def shell_size() -> dict[str, Any]:
    """Budget 1: bytes of every precached file and sw.js, raw and gzipped one by one."""
    paths = [PWA / "sw.js"]
    for url in shell_urls():
        paths.append(PWA / ("index.html" if url == "/" else url.removeprefix("/app/").lstrip("/")))
    raw = sum(p.stat().st_size for p in paths)
    packed = sum(len(gzip.compress(p.read_bytes(), 6)) for p in paths)
    return {"files": len(paths), "raw": raw, "gzip": packed}


def until(page: Any, expression: str, timeout: float = 300) -> Any:
    """Poll a JS expression (wait_for_function would eval in the page, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.05)
    return value


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.get_by_label("用户名").fill("budget_cadre")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    until(page, "document.documentElement.dataset.syncedAt")
    until(page, "navigator.serviceWorker.controller !== null")
    page.locator("main .week .row").first.wait_for()


def render_times(page: Any, cdp: Any, rate: float, runs: int) -> list[float]:
    """Reloads under a CPU throttle: ms from navigation start to the first screen drawn."""
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    times = []
    for _ in range(runs):
        page.reload()
        mark = "performance.getEntriesByName('zoufang:first-render')[0]"
        times.append(float(until(page, f"{mark} && {mark}.startTime")))
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    return times


def scroll_frames(page: Any, cdp: Any) -> list[float]:
    """Frame intervals (ms) during a touch scroll down the 500-household list at 4× throttle."""
    page.goto(page.url.split("#")[0] + "#/")
    page.locator("main .week .row").first.wait_for()
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    page.evaluate("""window.__frames = []; (() => {
        let last = performance.now();
        const tick = (now) => { window.__frames.push(now - last); last = now;
            if (window.__frames.length < 100000) requestAnimationFrame(tick); };
        requestAnimationFrame(tick); })()""")
    cdp.send(
        "Input.synthesizeScrollGesture",
        {
            "x": 180,
            "y": 500,
            "yDistance": -12000,
            "speed": 1200,
            "gestureSourceType": "touch",
            "repeatCount": 1,
        },
    )
    frames = page.evaluate("window.__frames.splice(0)")
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    return [float(f) for f in frames[2:]]  # the first frames measure the set-up, not scrolling


COUNT_PEOPLE = """import("/app/js/db.js").then(async ({ open, ofType }) =>
    (await open()).read(["records"], (t) => t.count("records", ofType("person"))))"""

QUEUE_VISITS = """async (count) => {
    const { open } = await import("/app/js/db.js");
    const outbox = await import("/app/js/outbox.js");
    const { latestForm } = await import("/app/js/queries.js");
    const { defaults } = await import("/app/js/forms.js");
    const { localIso } = await import("/app/js/time.js");
    const db = await open();
    const form = await latestForm(db, "weekly_visit");
    const households = await db.read(["records"], (t) => t.all("records",
        IDBKeyRange.bound(["household"], ["household", []])));
    for (let i = 0; i < count; i++) {
        const household = households[i % households.length];
        await outbox.create(db, "visit", { household_id: household.id, visited_at: localIso(),
            mode: "home", form_id: form.form_id, form_version: form.version,
            answers: defaults(form), people_seen: [] });
    }
    return (await outbox.waiting(db)).total;
}"""

WATCH_SYNC = """() => import("/app/js/sync.js").then(({ events }) => {
    window.__sync = { start: null, pull: null, end: null };
    window.addEventListener("online", () => { window.__sync.start = performance.now(); });
    events.addEventListener("progress", ({ detail }) => {
        if (detail.step === "pull") window.__sync.pull ??= performance.now();
    });
    events.addEventListener("done", ({ detail }) => {
        window.__sync.end = performance.now(); window.__sync.result = detail; });
})"""


def slow_sync(page: Any, cdp: Any, visits: int) -> dict[str, Any]:
    """Budget 3: queue `visits` offline, then come back online over slow 3G. Both through CDP:
    Playwright's set_offline() sets the same network conditions and would undo the throttle."""
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {**SLOW_3G, "offline": True})
    queued = page.evaluate(QUEUE_VISITS, visits)
    page.goto(page.url.split("#")[0] + "#/sync")
    page.locator("main .sync").wait_for()
    requests: list[int] = []

    def count(request: Any) -> None:
        if "/api/" in request.url:
            requests.append(len(request.post_data_buffer or b""))

    page.on("request", count)
    page.evaluate(WATCH_SYNC)
    cdp.send("Network.emulateNetworkConditions", SLOW_3G)  # back online: the app syncs by itself
    until(page, "window.__sync.end !== null", timeout=600)
    timing = page.evaluate("window.__sync")
    cdp.send("Network.emulateNetworkConditions", FAST)
    result = timing["result"]
    return {
        "queued": queued,
        "ok": result["ok"],
        "sent": result["sent"],
        "seconds": (timing["end"] - timing["start"]) / 1000,
        "push_seconds": ((timing["pull"] or timing["end"]) - timing["start"]) / 1000,
        "requests": len(requests),
        "upload_bytes": sum(requests),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        models = [
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line
        ]
        cpu = models[0].split(":", 1)[1].strip() if models else cpu
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def report(figures: dict[str, Any], chromium: str) -> str:
    """The run as a Markdown table, one row per budget."""
    shell, first, frames = figures["shell"], figures["first_render_4x"], figures["frames"]

    def verdict(ok: bool) -> str:
        return "✓" if ok else "✗"

    def sync_row(label: str, run: dict[str, Any], details: str = "") -> str:
        pull = run["seconds"] - run["push_seconds"]
        ok = run["ok"] and run["seconds"] < 30
        measured = f"{run['seconds']:.1f} s: push {run['push_seconds']:.1f} s + pull {pull:.1f} s"
        return f"| {label} | < 30 s | {measured}{details} | {verdict(ok)} |"

    sync = figures["sync"]
    status = f"ok, {sync['sent']} sent" if sync["ok"] else "FAILED"
    uploads = f"; {sync['requests']} requests, {sync['upload_bytes'] / 1024:.0f} KB up; {status}"
    median_4x, median_1x = statistics.median(first), statistics.median(figures["first_render_1x"])
    runs_4x = ", ".join(f"{t:.0f}" for t in first)
    p50, p95 = percentile(frames, 0.5), percentile(frames, 0.95)
    long_frames = sum(1 for f in frames if f > 50)
    households = figures["households"]
    return "\n".join(
        [
            f"### {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            "",
            f"{machine()}; Chromium {chromium}; {households} households, {figures['people']} "
            f"people. Source: {figures['source']}.",
            "",
            "| budget | target | measured | |",
            "|---|---|---|---|",
            f"| app shell, gzip | ≤ 150 KB | {shell['gzip'] / 1024:.1f} KB ({shell['files']} "
            f"files, {shell['raw'] / 1024:.0f} KB raw) | {verdict(shell['gzip'] <= 150 * 1024)} |",
            f"| first render from cache, 4× CPU, offline | < 1 s | median {median_4x:.0f} ms "
            f"({runs_4x}) | {verdict(median_4x < 1000)} |",
            sync_row(f"{sync['queued']} queued visits over slow 3G", sync, uploads),
            sync_row("the same, if the server gzipped its JSON answers", figures["sync_gzip"]),
            f"| week screen, {households} households | smooth | render {median_1x:.0f} ms at 1×, "
            f"{median_4x:.0f} ms at 4× | |",
            f"| touch scroll down the list, 4× CPU | smooth | frames p50 {p50:.1f} ms, p95 "
            f"{p95:.1f} ms, max {max(frames):.0f} ms; {long_frames} of {len(frames)} over 50 ms "
            f"| {verdict(p95 < 50)} |",
        ]
    )


def append_to_readme(text: str) -> None:
    """Insert the run at the end of this script's section (other scripts append below theirs)."""
    existing = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    if SECTION not in existing:
        intro = (
            f"{SECTION}\n\n```sh\n.venv/bin/python bench/pwa_budgets.py   # ~2 min, appends a run\n"
            "```\n\nWhat each figure is: the docstring of `bench/pwa_budgets.py`; the targets are "
            "issue 4's. Runs, newest last:\n"
        )
        runs = existing.find("\n## Runs")
        if runs < 0:
            existing = existing.rstrip("\n") + "\n\n" + intro
        else:
            existing = existing[:runs] + "\n" + intro + existing[runs:]
    start = existing.index(SECTION)
    following = existing.find("\n## ", start + len(SECTION))
    end = len(existing) if following < 0 else following
    section = existing[start:end].rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    README.write_text(existing[:start] + section + existing[end:], encoding="utf-8")


def source_version() -> str:
    head = ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (ROOT / ".git" / ref[5:]).read_text().strip()[:10] + " (+ working tree)"
        return ref[:10]
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as folder:
        cheap_hash = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
        database = f"sqlite:///{folder}/budget.db"
        app = create_app({"DATABASE_URL": database, "SECRET_KEY": "x", "PASSWORD_HASH": cheap_hash})
        app.instance_path = folder
        upgrade(app)
        build_county(app, args.households, rng)
        wsgi = GzipAnswers(app)
        server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        figures: dict[str, Any] = {
            "households": args.households,
            "shell": shell_size(),
            "source": source_version(),
        }
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(**PHONE)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            sign_in(page, url)
            figures["people"] = page.evaluate(COUNT_PEOPLE)
            figures["first_render_1x"] = render_times(page, cdp, 1, 5)
            context.set_offline(True)
            figures["first_render_4x"] = render_times(page, cdp, 4, 5)
            context.set_offline(False)
            figures["frames"] = scroll_frames(page, cdp)
            figures["sync"] = slow_sync(page, cdp, args.visits)
            wsgi.on = True
            figures["sync_gzip"] = slow_sync(page, cdp, args.visits)
            chromium = browser.version
            browser.close()
        server.shutdown()
    text = report(figures, chromium)
    print(text)
    print(json.dumps({k: v for k, v in figures.items() if k != "frames"}, indent=1))
    if not args.no_readme:
        append_to_readme(text)


if __name__ == "__main__":
    main()
