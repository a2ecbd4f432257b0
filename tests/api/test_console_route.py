"""GET /v1/console and its files: shipped in the package, served with the console's security headers."""

from __future__ import annotations

import re

import pytest

from chalicelib.api.console import STATIC
from tests.api.harness import Api, error_of

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options")


def test_the_page_loads_without_a_key_and_forbids_inline_script_sniffing_and_framing(api: Api) -> None:
    response = api.call("GET", "/v1/console")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert (response.headers["X-Content-Type-Options"], response.headers["X-Frame-Options"]) == ("nosniff", "DENY")
    assert re.search(rb"<script(?![^>]*\bsrc=)", response.body) is None  # no inline script at all


def test_every_file_the_page_and_its_modules_name_is_shipped_and_served_with_its_type(api: Api) -> None:
    page = (STATIC / "index.html").read_text()
    named = set(re.findall(r'(?:src|href)="console/([^"]+)"', page))
    for script in STATIC.glob("*.js"):
        named |= set(re.findall(r'from "\./([^"]+)"', script.read_text()))
    assert {"app.js", "console.css"} <= named
    types = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    for name in sorted(named):
        response = api.call("GET", f"/v1/console/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith(types[name.rsplit(".", 1)[1]])
        assert all(header in response.headers for header in SECURITY_HEADERS)
    shipped = "".join(path.read_text() for path in STATIC.iterdir()).replace("http://www.w3.org/2000/svg", "")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", shipped)  # nothing from outside


@pytest.mark.parametrize("name", ["nope.js", "..%2Fconsole.py", "%2E%2E%2Fopenapi.py", "index.HTML", "app.js.map"])
def test_anything_but_a_shipped_file_is_a_404_in_the_envelope(api: Api, name: str) -> None:
    response = api.call("GET", f"/v1/console/{name}")
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")
