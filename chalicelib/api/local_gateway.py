"""Make Chalice's local gateway (`chalice local`, Chalice's test client) answer like the deployed API.

Two leaks of the local gateway, closed here:
- An unknown route: Chalice mimics API Gateway's 403 "Missing Authentication Token", and when the
  request has an Authorization header it copies the header into the body ("...Authorization=Bearer
  <the caller's key>"). Deployed, a Gateway Response (infra/lambda.yaml) answers our 404 envelope
  before the function runs; locally we answer the same envelope, and never echo a header.
- The access log: chalice local's HTTP server (http.server) logs each request line with its query
  string, so WhatsApp's verification GET put `hub.verify_token` in clear in the log. Query values
  are masked in every line that server logs.

`install()` patches chalice.local's classes once, only where chalice.local is already loaded: the
`chalice local` command and chalice.test import it before they import app.py. In Lambda the module
does not exist (Chalice packages only its runtime), and `import app` never pays for loading it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

NOT_FOUND_BODY = json.dumps({"error": {"code": "not_found", "message": "no such route", "details": {}}})
_QUERY_VALUE = re.compile(r"([?&][^=&\s\"']*=)[^&\s\"']*")


def mask_query_values(text: str) -> str:
    """`text` with every URL query value replaced by `***` (names stay, for debugging)."""
    return _QUERY_VALUE.sub(r"\1***", text)


def not_found_response() -> dict[str, Any]:
    """The 404 envelope of an unknown route, as the local gateway's response dict."""
    return {"statusCode": 404, "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {},
            "body": NOT_FOUND_BODY}


def install() -> bool:
    """Patch chalice.local when it is loaded in this process; True when it is (now or before) patched."""
    local = sys.modules.get("chalice.local")
    if local is None:
        return False
    gateway, handler = local.LocalGateway, local.ChaliceRequestHandler
    if getattr(gateway, "_ruche_patched", False):
        return True
    original = gateway.handle_request

    def handle_request(self: Any, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        try:  # the gateway's own matcher, on the app's routes (sorting ~60 routes: microseconds)
            local.RouteMatcher(list(self._app_object.routes)).match_route(path)
        except ValueError:  # no route: the gateway would answer 403 and echo the Authorization header
            return not_found_response()
        return original(self, method, path, headers, body)

    def log_message(self: Any, format: str, *args: Any) -> None:
        message = mask_query_values(format % args)
        sys.stderr.write(f"{self.address_string()} - - [{self.log_date_time_string()}] {message}\n")

    gateway.handle_request = handle_request
    handler.log_message = log_message
    gateway._ruche_patched = True
    return True
