"""How server/web.py serves the PWA: the page, the service worker and the shell (no browser)."""

from __future__ import annotations

import json
import re

from server.http.web import PWA, shell_files


def precached(client) -> list[str]:
    source = client.get("/sw.js").get_data(as_text=True)
    return json.loads(re.search(r"const SHELL = (\[.*?\]);", source).group(1))


def test_the_page_the_worker_and_the_manifest_are_always_revalidated(client):
    for path in ("/", "/sw.js", "/manifest.webmanifest", "/app/js/app.js"):
        with client.get(path) as response:
            assert response.status_code == 200, path
            assert response.headers["Cache-Control"] == "no-cache", path
    assert client.get("/sw.js").mimetype == "text/javascript"
    with client.get("/manifest.webmanifest") as response:
        assert response.mimetype == "application/manifest+json"


def test_the_page_forbids_inline_scripts_and_eval(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe" not in policy


def test_the_worker_precaches_every_shell_file_and_the_page_preloads_every_module(client):
    urls = precached(client)
    assert urls[:2] == ["/", "/manifest.webmanifest"]
    assert {f"/app/{name}" for name in shell_files()} == set(urls[2:])
    assert {"/app/js/app.js", "/app/css/app.css", "/app/icons/icon-512.png"} <= set(urls)
    page = client.get("/").get_data(as_text=True)
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', page))
    assert preloaded == {url for url in urls if url.endswith(".js")}


def test_every_module_the_shell_imports_is_precached(client):
    urls = set(precached(client))
    for name in shell_files():
        if name.endswith(".js"):
            source = (PWA / name).read_text(encoding="utf-8")
            folder = f"/app/{name.rsplit('/', 1)[0]}/"
            for target in re.findall(
                r'^(?:import|export)[^;]*? from "(\.{1,2}/[^"]+)"', source, re.M
            ):
                url = re.sub(r"/[^/]+/\.\./", "/", folder + target.removeprefix("./"))
                assert url in urls, f"{name} imports {target}, which is not precached"


def test_the_cache_version_follows_the_config_option(app):
    app.config["PWA_VERSION"] = "v7"
    assert 'const VERSION = "v7";' in app.test_client().get("/sw.js").get_data(as_text=True)


def test_the_default_version_is_a_hash_of_the_shell(client):
    source = client.get("/sw.js").get_data(as_text=True)
    assert re.search(r'const VERSION = "[0-9a-f]{12}";', source)


def test_only_shell_files_are_served_under_app(client):
    with client.get("/app/js/app.js") as response:
        assert response.status_code == 200
    assert client.get("/app/icons/make_icons.py").status_code == 404
    assert client.get("/app/../server/web.py").status_code == 404
    assert client.get("/app/js/package.json").status_code == 404


def test_an_unknown_api_path_is_a_json_404_never_the_app(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"
