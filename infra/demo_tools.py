"""The demo tool server: deterministic answers to the tools of the bundles in examples/agents.

The local stack serves it on 127.0.0.1:8765 (`POST /tools/<tool id>`, a JSON body of the tool's
inputs, a JSON object back), so the demo agents' tools run without any real back office. Answers
depend only on the inputs, never on a clock or randomness, so a demo conversation is repeatable:

- lookup_order: `NW-` + 6 digits. The last digit says where the order stands (0-6 delivered,
  7 shipped, 8 processing, 9 cancelled); a 9 as the second-to-last digit puts it outside the
  30-day window; the total is between $19.99 and $469.99. Anything else is 404.
- issue_refund: a refund reference derived from the order number.
- cancel_order: a cancellation reference derived from the order number.
- check_slot: Sundays are closed and Saturday afternoons (14:00, 16:00) are fully booked; every
  other slot is free. book_appointment: a booking reference derived from the booking.
  cancel_appointment: any HD- reference is cancelled.
- check_line: postcodes 10001 and E1 6AN have a known outage; an account number or phone
  ending in 0 is suspended.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ToolAnswer = tuple[int, dict[str, Any]]

_ORDER = re.compile(r"NW-(\d{6})")
_STATUS_BY_LAST_DIGIT = {"7": "shipped", "8": "processing", "9": "cancelled"}
_PLANS = ("Basic 5GB", "Everyday 30GB", "Unlimited", "Unlimited Plus")
OUTAGE_POSTCODES = frozenset({"10001", "E1 6AN"})


def lookup_order(inputs: Mapping[str, Any]) -> ToolAnswer:
    match = _ORDER.fullmatch(str(inputs.get("order_number") or "").strip().upper())
    if match is None:
        return HTTPStatus.NOT_FOUND, {"error": "no such order"}
    digits = match.group(1)
    number = int(digits)
    return HTTPStatus.OK, {
        "status": _STATUS_BY_LAST_DIGIT.get(digits[-1], "delivered"),
        "total": round(number % 450 + 19.99, 2),
        "purchase_date": f"2026-{number % 12 + 1:02d}-{number % 28 + 1:02d}",
        "within_return_window": digits[-2] != "9",
    }


def issue_refund(inputs: Mapping[str, Any]) -> ToolAnswer:
    order = str(inputs.get("order") or "").strip().upper()
    if _ORDER.fullmatch(order) is None:
        return HTTPStatus.NOT_FOUND, {"error": "no such order"}
    reference = hashlib.sha256(order.encode()).hexdigest()[:8].upper()
    return HTTPStatus.OK, {"refund_id": f"RF-{reference}", "status": "issued"}


def cancel_order(inputs: Mapping[str, Any]) -> ToolAnswer:
    order = str(inputs.get("order") or "").strip().upper()
    if _ORDER.fullmatch(order) is None:
        return HTTPStatus.NOT_FOUND, {"error": "no such order"}
    reference = hashlib.sha256(f"cancel:{order}".encode()).hexdigest()[:8].upper()
    return HTTPStatus.OK, {"cancellation_id": f"CX-{reference}", "status": "cancelled"}


_BOOKING = re.compile(r"HD-\d{5}")
_AFTERNOON = frozenset({"14:00", "16:00"})


def check_slot(inputs: Mapping[str, Any]) -> ToolAnswer:
    try:
        day = date.fromisoformat(str(inputs.get("day") or ""))
    except ValueError:
        return HTTPStatus.BAD_REQUEST, {"error": "day must be YYYY-MM-DD"}
    weekday = day.weekday()  # Monday is 0
    available = weekday != 6 and not (weekday == 5 and str(inputs.get("time")) in _AFTERNOON)
    return HTTPStatus.OK, {"available": available}


def book_appointment(inputs: Mapping[str, Any]) -> ToolAnswer:
    booking = json.dumps({key: str(inputs.get(key)) for key in ("service", "day", "time", "patient_name")},
                         sort_keys=True)
    number = int(hashlib.sha256(booking.encode()).hexdigest(), 16) % 100000
    return HTTPStatus.OK, {"booking_id": f"HD-{number:05d}"}


def cancel_appointment(inputs: Mapping[str, Any]) -> ToolAnswer:
    if _BOOKING.fullmatch(str(inputs.get("booking") or "").strip().upper()) is None:
        return HTTPStatus.NOT_FOUND, {"error": "no such booking"}
    return HTTPStatus.OK, {"cancelled": True}


def check_line(inputs: Mapping[str, Any]) -> ToolAnswer:
    line = str(inputs.get("account") or inputs.get("phone") or "").strip()
    if not line:
        return HTTPStatus.BAD_REQUEST, {"error": "an account number or a phone number is needed"}
    postcode = str(inputs.get("postcode") or "").strip().upper()
    digits = re.sub(r"\D", "", line) or "1"
    return HTTPStatus.OK, {
        "line_status": "suspended" if digits.endswith("0") else "active",
        "outage": postcode in OUTAGE_POSTCODES,
        "plan": _PLANS[int(digits) % len(_PLANS)],
    }


TOOLS: Mapping[str, Callable[[Mapping[str, Any]], ToolAnswer]] = {
    "lookup_order": lookup_order,
    "issue_refund": issue_refund,
    "cancel_order": cancel_order,
    "check_line": check_line,
    "check_slot": check_slot,
    "book_appointment": book_appointment,
    "cancel_appointment": cancel_appointment,
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        name = self.path.split("?", 1)[0].removeprefix("/tools/")
        tool = TOOLS.get(name)
        if tool is None:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"unknown tool {name!r}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            inputs = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"})
            return
        if not isinstance(inputs, dict):
            self._answer(HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"})
            return
        self._answer(*tool(inputs))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tool inputs may hold PII (an email), so requests are not logged."""


class DemoToolServer:
    """The demo tools on a background thread; `port=0` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-tools", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> DemoToolServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which may never have run
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
