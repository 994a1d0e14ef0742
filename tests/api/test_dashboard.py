"""The dashboard's assets as the server serves them at /ui: the page, its modules, the security headers, and
the rule that the page never turns text into HTML (checked on the sources, so a regression fails here at once)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from chowder.core.settings import Settings
from chowder.web import STATIC
from tests.api.conftest import client_for

MODULE_IMPORT = re.compile(r"""^import .* from '\./([\w-]+\.js)';$""", re.MULTILINE)


def test_ui_redirects_to_the_page_which_loads_its_module(client: TestClient) -> None:
    response = client.get("/ui", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js"></script>' in page.text
    assert '<link rel="stylesheet" href="app.css">' in page.text
    assert client.get("/ui/app.css").headers["content-type"].startswith("text/css")


def test_every_answer_under_ui_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/ui/", "/ui/app.js", "/ui/config.json", "/ui/missing.js"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
    assert client.get("/ui/missing.js").status_code == 404
    # The API itself is not framed by the dashboard's policy (its clients are not browsers loading pages).
    assert "content-security-policy" not in client.get("/healthz").headers


def test_every_module_the_page_imports_is_served_as_javascript(client: TestClient) -> None:
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/ui/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].split(";")[0] in {"text/javascript", "application/javascript"}, name
        todo.extend(MODULE_IMPORT.findall(response.text))
    on_disk = {path.name for path in STATIC.glob("*.js")}
    assert seen == on_disk, f"modules not reached from app.js: {on_disk - seen}"


def test_config_says_whether_billing_is_configured(client: TestClient, settings: Settings) -> None:
    assert client.get("/ui/config.json").json() == {"billing": False, "dev_model": False}
    billed = settings.model_copy(update={"stripe_secret_key": "sk_test_x", "dev_model": True})
    with client_for(billed) as other:
        assert other.get("/ui/config.json").json() == {"billing": True, "dev_model": True}


def test_the_page_never_writes_html_from_strings() -> None:
    """Untrusted text (agent answers, file names, API errors) goes in as text nodes only; no inline script or
    style either, which the Content-Security-Policy would refuse."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for path in sorted(STATIC.glob("*.js")):
        found = [line for line in path.read_text().splitlines() if sinks.search(line.split("//")[0])]
        assert found == [], f"{path.name}: {found}"
    html = (STATIC / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None and "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None


def test_assets_ship_in_the_package() -> None:
    assert {"index.html", "app.js", "app.css", "api.js", "dom.js"} <= {p.name for p in STATIC.iterdir()}
    assert Path(STATIC, "index.html").read_text().startswith("<!doctype html>")
