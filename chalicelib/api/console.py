"""The operator console: a single page (HTML, CSS and ES modules shipped in chalicelib/api/console_static).

`GET /v1/console` serves index.html and `GET /v1/console/{asset}` its CSS and scripts; nothing is
fetched from anywhere else. The page needs no auth to load: it asks for a tenant key, keeps it in
sessionStorage only, and calls the same HTTP API as curl with it. Every answer carries headers
that forbid inline script, MIME sniffing and framing (`console_headers`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chalice.app import Response

from chalicelib.domain.errors import NotFound

STATIC = Path(__file__).resolve().parent / "console_static"
_NAME = re.compile(r"[a-z][a-z0-9_-]*\.(html|css|js|svg)")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
}
# 'self' only: no inline script or style, no other origin; the API is the page's own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    body: str
    content_type: str


def console_headers(content_type: str) -> dict[str, str | list[str]]:
    """The headers of every console answer: CSP without inline script, nosniff, no framing."""
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def serve(name: str) -> Response:
    """The answer for one shipped file, with the console's headers. Raises NotFound."""
    found = asset(name)
    return Response(body=found.body, status_code=200, headers=console_headers(found.content_type))


def asset(name: str) -> Asset:
    """One shipped file by its plain name (no path). Raises NotFound for anything else."""
    if not _NAME.fullmatch(name) or not (STATIC / name).is_file():
        raise NotFound("no such console file", asset=name[:80])
    return Asset(body=(STATIC / name).read_text(encoding="utf-8"), content_type=CONTENT_TYPES[name.rsplit(".", 1)[1]])
