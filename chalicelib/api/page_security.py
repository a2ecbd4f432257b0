"""The security headers of the HTML pages the app serves (the webchat page; the console reuses them).

`security_headers(html, frame_ancestors)` builds, for one page:
- Content-Security-Policy: nothing loads but the page's own inline <script> and <style> blocks,
  allowed by their sha256 (no 'unsafe-inline', so injected markup cannot run script), fetches go
  to the page's own origin only, no <base>, no form posts elsewhere, and framing only by the
  listed origins ('none' without any);
- X-Content-Type-Options: nosniff; X-Frame-Options: DENY when no origin may frame the page (older
  browsers ignore frame-ancestors; X-Frame-Options cannot list origins, so it is left out when
  some may); Referrer-Policy: no-referrer (the page URL names a binding).

Embedding origins come from tenant-written config, so `origin_problem` checks each one is a bare
origin (scheme, plain host, port): a value like "https://a.example;script-src *" would otherwise
rewrite the policy.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from chalicelib.providers.network import url_form_problem

NONE = "'none'"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def security_headers(html: str, frame_ancestors: Iterable[str] = ()) -> dict[str, str]:
    """The headers to send with `html`. Origins failing origin_problem are left out (never trusted)."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    origins = [origin for origin in frame_ancestors if origin_problem(origin) is None]
    scripts, styles = " ".join(hashes["script"]) or NONE, " ".join(hashes["style"]) or NONE
    framers = " ".join(origins) or NONE
    policy = "; ".join((
        f"default-src {NONE}", f"script-src {scripts}", f"style-src {styles}", "connect-src 'self'",
        "img-src 'self' data:", f"base-uri {NONE}", f"form-action {NONE}", f"frame-ancestors {framers}",
    ))
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if not origins:
        headers["X-Frame-Options"] = "DENY"
    return headers


def origin_problem(origin: object) -> str | None:
    """Why `origin` is not a bare web origin like https://shop.example.com:8443; None when it is."""
    if not isinstance(origin, str):
        return "must be a string like https://shop.example.com"
    form = url_form_problem(origin)
    if form is not None:
        return form
    parts = urlsplit(origin)
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        return "must be an origin only: a scheme, a host and a port, no path"
    return None
