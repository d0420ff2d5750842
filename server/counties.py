"""Many counties, one app (CONTRACT §1 ``ZOUFANG_COUNTIES``, docs/deploy.md).

The file names each county's host names and database. Every county gets its own Flask app,
built by ``create_app`` with that county's configuration, and a small WSGI dispatcher hands
each request to the app its ``Host`` names. So each connection pool, cache, signing key, token,
sign-in counter and scheduler claim belongs to exactly one county by construction: nothing
below the dispatcher knows that other counties exist.

```toml
[counties.qingxi]
hosts = ["qingxi.zoufang.example.gov.cn"]
database_url = "postgresql://zoufang@db1.internal/qingxi"
# optional: secret_key = "…", settings = { PUBLIC_URL = "https://qingxi.…", TIMEZONE = "…" }

[province]                       # optional: the province over the file's counties
hosts = ["sheng.zoufang.example.gov.cn"]
database_url = "postgresql://zoufang@db0.internal/province"  # its region tree and its users
# optional: counties = ["qingxi", …] (default: every county of the file), secret_key, settings
```

The province is an app like a county's, with its own database, key and instance folder; its
coverage reads each county's weekly snapshots in that county's database
(server/reports/province_counties.py). Commands reach it as ``--county province``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from werkzeug.wrappers import Request, Response

from server import create_app
from server.http.errors import MESSAGES
from server.storage.db import normalize_url

ENVIRONMENT = "ZOUFANG_COUNTIES"
#: a county's name is also its instance folder's name and a word in log lines
COUNTY_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
HOST_NAME = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
#: the ``[province]`` table's app: its name in ``--county``, log lines and its instance folder
PROVINCE = "province"
REQUIRED_KEYS = ("hosts", "database_url")
OPTIONAL_KEYS = ("secret_key", "settings")
#: settings a county sets with its own keys, or that belong to the whole file
NOT_SETTINGS = ("DATABASE_URL", "SECRET_KEY", "COUNTIES", "COUNTY")
MIN_SECRET_LENGTH = 16


class CountiesError(Exception):
    """The counties file, or a county asked for, cannot be used; the message names why."""


@dataclass(frozen=True)
class County:
    """One ``[counties.<name>]`` table of the file, checked."""

    name: str
    hosts: tuple[str, ...]
    database_url: str
    secret_key: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Province:
    """The ``[province]`` table: its own app (``app``, named PROVINCE) and the counties of the
    file whose snapshots it adds up."""

    app: County
    counties: tuple[str, ...]


# --- the file -----------------------------------------------------------------------------


def load_counties(path: str | Path) -> dict[str, County]:
    """The counties of the file at ``path``, in its order; CountiesError naming the first
    problem, so that a server never starts on half a configuration."""
    return _load(path)[0]


def load_province(path: str | Path) -> Province | None:
    """The file's ``[province]``, checked with the whole file; None when it has none."""
    return _load(path)[1]


def _load(path: str | Path) -> tuple[dict[str, County], Province | None]:
    where = f"{ENVIRONMENT} ({path})"
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CountiesError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CountiesError(f"{where} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"counties", PROVINCE})
    if unknown:
        raise CountiesError(
            f"{where}: unknown key {unknown[0]!r} at the top; the file holds only "
            "[counties.<name>] tables and a [province]"
        )
    tables = raw.get("counties")
    if not isinstance(tables, dict) or not tables:
        raise CountiesError(f"{where} names no county: add a [counties.<name>] table")
    counties = [_county(where, name, table) for name, table in tables.items()]
    named = {county.name: county for county in counties}
    province = _province(where, raw[PROVINCE], named) if PROVINCE in raw else None
    _refuse_shared(where, [*counties, *([province.app] if province else [])])
    return named, province


def _province(where: str, table: Any, counties: dict[str, County]) -> Province:
    """``[province]``: a county's keys for its own app, and ``counties``, names of the file."""
    if PROVINCE in counties:
        raise CountiesError(f"{where}: a county cannot be named {PROVINCE!r} beside [province]")
    if not isinstance(table, dict):
        raise CountiesError(f"{where}: {PROVINCE} must be a table")
    own = {key: value for key, value in table.items() if key != "counties"}
    chosen = table.get("counties", list(counties))
    if not isinstance(chosen, list) or not chosen:
        raise CountiesError(f"{where}: province: counties must be a list of county names")
    for name in chosen:
        if name not in counties:
            raise CountiesError(f"{where}: province: {name!r} is no county of the file")
    return Province(_county(where, PROVINCE, own), tuple(dict.fromkeys(chosen)))


def _county(where: str, name: str, table: Any) -> County:
    if not COUNTY_NAME.match(name) or len(name) > 63:
        raise CountiesError(
            f"{where}: county name {name!r} is not snake_case (a-z, 0-9 and _, "
            "starting with a letter, at most 63 characters)"
        )
    if not isinstance(table, dict):
        raise CountiesError(f"{where}: counties.{name} must be a table")
    unknown = sorted(set(table) - {*REQUIRED_KEYS, *OPTIONAL_KEYS})
    if unknown:
        known = ", ".join((*REQUIRED_KEYS, *OPTIONAL_KEYS))
        raise CountiesError(f"{where}: county {name!r} has unknown key {unknown[0]!r} ({known})")
    missing = [key for key in REQUIRED_KEYS if key not in table]
    if missing:
        raise CountiesError(f"{where}: county {name!r} has no {missing[0]}")
    hosts = table["hosts"]
    if not isinstance(hosts, list) or not hosts:
        raise CountiesError(f"{where}: county {name!r}: hosts must be a list of host names")
    url = table["database_url"]
    if not isinstance(url, str) or not url.strip():
        raise CountiesError(f"{where}: county {name!r}: database_url must be a database URL")
    secret = table.get("secret_key")
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH):
        raise CountiesError(
            f"{where}: county {name!r}: secret_key must be a string of at least "
            f"{MIN_SECRET_LENGTH} characters"
        )
    return County(
        name=name,
        hosts=tuple(_file_host(where, name, host) for host in hosts),
        database_url=url.strip(),
        secret_key=secret,
        settings=_settings(where, name, table.get("settings", {})),
    )


def _file_host(where: str, county: str, host: Any) -> str:
    """A host name as requests will carry it: lower case, punycode, no port."""
    if not isinstance(host, str):
        raise CountiesError(f"{where}: county {county!r}: host {host!r} is not a string")
    try:
        name = host.strip().rstrip(".").lower().encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    if not HOST_NAME.match(name):
        port = " (hosts are matched without their port)" if ":" in host else ""
        raise CountiesError(f"{where}: county {county!r}: {host!r} is not a host name{port}")
    return name


def _settings(where: str, county: str, settings: Any) -> dict[str, Any]:
    """Other ``ZOUFANG_`` settings of this county alone, named without the prefix."""
    if not isinstance(settings, dict):
        raise CountiesError(f"{where}: county {county!r}: settings must be a table")
    named = {str(key).upper(): value for key, value in settings.items()}
    for key in named:
        if key in NOT_SETTINGS or not re.match(r"^[A-Z][A-Z0-9_]*$", key):
            raise CountiesError(f"{where}: county {county!r}: {key!r} cannot be a setting here")
    return named


def _refuse_shared(where: str, counties: list[County]) -> None:
    """Two counties on one host name, one database or one key would see each other's data."""
    owners: dict[tuple[str, str], str] = {}
    for county in counties:
        owned = [("host", host) for host in county.hosts]
        owned.append(("database", normalize_url(county.database_url)))
        if county.secret_key:
            owned.append(("secret_key", county.secret_key))
        for kind, value in owned:
            other = owners.get((kind, value))
            if other is not None:
                shown = {"host": f" {value!r}", "database": f" {value.split('@')[-1]!r}"}
                both = (
                    f"twice for {other!r}"
                    if other == county.name
                    else f"for both {other!r} and {county.name!r}"
                )
                raise CountiesError(f"{where}: {kind}{shown.get(kind, '')} is listed {both}")
            owners[(kind, value)] = county.name


# --- one app per county -------------------------------------------------------------------


def county_app(
    county: County, config: dict[str, Any] | None = None, instance_root: str | Path | None = None
) -> Flask:
    """The app of one county: its database, its key, its instance folder
    (``<instance>/counties/<name>``: bulletins, backups, a generated key)."""
    base = dict(config or {})
    root = Path(instance_root) if instance_root else Path(Flask("server").instance_path)
    county_config: dict[str, Any] = {
        **base,
        # Set for the whole process, these would tie every county to one: a dashboard address
        # links notices to one county, a replica answers one county's reports, and a shared
        # photo store's clean-up would delete bytes another county still refers to. Each
        # county names its own in its settings; photos stay in its database by default.
        "PUBLIC_URL": None,
        "REPORTS_DATABASE_URL": None,
        "BLOB_STORE": "database",
        **county.settings,
        "DATABASE_URL": county.database_url,
        "COUNTY": county.name,
    }
    # with no key anywhere, create_app generates one in the county's own instance folder
    secret = county.secret_key or _derived_secret(base.get("SECRET_KEY"), county.name)
    if secret:
        county_config["SECRET_KEY"] = secret
    return create_app(county_config, instance_path=str(root / "counties" / county.name))


def province_app(
    province: Province,
    counties: dict[str, County],
    config: dict[str, Any] | None = None,
    instance_root: str | Path | None = None,
) -> Flask:
    """The province's app: a county's app on the province's database (its region tree and its
    users), whose province coverage reads the snapshots in each of its counties' databases."""
    from server.reports import province_counties

    app = county_app(province.app, config, instance_root)
    province_counties.init_app(app, [counties[name] for name in province.counties])
    return app


def _derived_secret(base: Any, county: str) -> str | None:
    """HMAC-SHA256 of the county's name under ZOUFANG_SECRET_KEY: one key to keep for the
    whole file, and still a different key per county, so that a cursor signed for one county
    fails the signature check in every other."""
    secret = base or os.environ.get("ZOUFANG_SECRET_KEY")
    if not secret:
        return None
    return hmac.new(
        str(secret).encode(), f"zoufang county {county}".encode(), hashlib.sha256
    ).hexdigest()


# --- choosing the app by Host -------------------------------------------------------------


def request_host(environ: dict[str, Any]) -> str:
    """The host a request names, as the file spells hosts: lower case, no port, no final dot."""
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").strip().lower()
    host = re.sub(r":\d*$", "", host)  # the port, also of [::1]:5000
    return host.rstrip(".")


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CountyDispatcher:
    """The WSGI app of ``zoufang serve`` with ZOUFANG_COUNTIES: each request goes to the app
    of the county its ``Host`` names; a host no county lists reaches no county."""

    def __init__(self, counties: dict[str, County], apps: dict[str, Flask]) -> None:
        self.apps = apps
        self.by_host = {host: apps[c.name] for c in counties.values() for host in c.hosts}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = self.by_host.get(request_host(environ))
        if app is None:
            return self.unknown_host(environ, start_response)
        return app(environ, start_response)

    def unknown_host(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """404, in the contract's error shape under /api/. /healthz answers for the process
        (a load balancer checks it by address), saying how many counties it serves."""
        request = Request(environ)
        if request.path == "/healthz":
            body = {"status": "ok", "counties": len(self.apps)}
            response = Response(orjson.dumps(body), 200, mimetype="application/json")
        elif request.path.startswith("/api/"):
            best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
            zh, en = MESSAGES["not_found"]
            error = {
                "code": "not_found",
                "message": en if best == "en" else zh,
                "details": {"reason": "no county is served at this host name"},
            }
            response = Response(orjson.dumps({"error": error}), 404, mimetype="application/json")
        else:
            text = "404 此地址没有对应的县 · No county is served at this host name\n"
            response = Response(text, 404, mimetype="text/plain")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response(environ, start_response)


# --- what the command line builds ---------------------------------------------------------


def counties_file() -> str | None:
    return os.environ.get(ENVIRONMENT) or None


def command_app(name: str | None) -> Flask:
    """The app a command works on: today's single app without ZOUFANG_COUNTIES, else the
    county ``--county`` names, or the province for ``--county province`` (CountiesError when
    it names none of the file's)."""
    path = counties_file()
    if path is None:
        if name is not None:
            raise CountiesError(
                f"--county {name} needs {ENVIRONMENT}, the file naming the counties"
            )
        return create_app()
    counties, province = _load(path)
    if name is None:
        raise CountiesError(
            f"{ENVIRONMENT} names {len(counties)} counties ({', '.join(counties)}): "
            "say which with zoufang --county NAME …"
        )
    if province is not None and name == PROVINCE:
        return province_app(province, counties)
    return county_app(_named(counties, name, path))


def served(name: str | None) -> tuple[WsgiApp, list[Flask]]:
    """What ``zoufang serve`` runs: the WSGI app and the Flask apps behind it (each with its
    own scheduler). Every county of the file and its province, or only ``--county``'s."""
    path = counties_file()
    if path is None:
        app = command_app(name)
        return app, [app]
    counties, province = _load(path)
    routed = {**counties, **({PROVINCE: province.app} if province else {})}
    if name is not None:
        routed = {name: routed[name] if name in routed else _named(counties, name, path)}
    apps = {
        chosen: province_app(province, counties)
        if province is not None and chosen == PROVINCE
        else county_app(county)
        for chosen, county in routed.items()
    }
    return CountyDispatcher(routed, apps), list(apps.values())


def _named(counties: dict[str, County], name: str, path: str) -> County:
    if name not in counties:
        raise CountiesError(
            f"no county named {name!r} in {ENVIRONMENT} ({path}); "
            f"its counties: {', '.join(counties)}"
        )
    return counties[name]
