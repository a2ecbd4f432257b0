"""The HTTP transport providers and the tool client share: one `send` callable, urllib inside.

Like an httpx transport (STYLE.md), a transport is one function from request to response, so tests
can pass a plain function and production uses `urllib_send`. The contract of a `Send`:
- any HTTP status comes back as an HttpResponse (4xx and 5xx are not exceptions);
- a timeout raises TimeoutError, an unreachable host raises ConnectionError.
`urllib_send` follows no redirects (a redirect to 169.254.169.254 would dodge the network guard)
and ignores proxy environment variables (the guard judges the host we actually connect to).
`guarded_send(allow_private)` is the one transport for every outbound request (LLM, embeddings,
tools, event endpoints, channel delivery): it runs network.check_url on each request's URL (its
form, its scheme, where its host resolves), and without allow_private it also judges the address
each connection reached: a name that resolved to a public address when the check looked and to a
private one when urllib connected (DNS rebinding) is refused before a byte is sent.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.providers.network import check_url, is_public

MAX_BODY_BYTES = 4 * 1024 * 1024  # an answer larger than this is not a chat completion or a tool result


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeout_s: float


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON. Raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))


Send = Callable[[HttpRequest], HttpResponse]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then surfaces as an HTTPError, which we return as a response


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class RefusedPeer(ConnectionError):
    """The connection reached a loopback, private or link-local address: closed unused."""


def _check_peer(connection: http.client.HTTPConnection) -> None:
    address = ipaddress.ip_address(connection.sock.getpeername()[0].split("%")[0])
    if not is_public(address):
        connection.close()
        # The address stays out of the message: it would map the platform's network for a tenant.
        raise RefusedPeer(f"refused: {connection.host} is on a private network when connecting")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()  # TCP then TLS: the peer is the address the TLS session runs to
        _check_peer(self)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPSConnection, req)


_GUARDED_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                              _GuardedHTTPHandler(), _GuardedHTTPSHandler())


def guarded_send(allow_private: bool) -> Send:
    """The transport for every outbound request: each URL is checked, then (without allow_private)
    each connection's peer. Raises BlockedDestination (a ProviderError) for a refused URL."""
    return _checked_send if allow_private else _guarded_urllib_send


def _checked_send(request: HttpRequest) -> HttpResponse:
    check_url(request.url, allow_private=True)  # the form and scheme still count on a private network
    return _send_with(_OPENER, request)


def _guarded_urllib_send(request: HttpRequest) -> HttpResponse:
    check_url(request.url, allow_private=False)
    return _send_with(_GUARDED_OPENER, request)


def urllib_send(request: HttpRequest) -> HttpResponse:
    """Send one request with the standard library. Raises TimeoutError or ConnectionError."""
    return _send_with(_OPENER, request)


def _send_with(opener: urllib.request.OpenerDirector, request: HttpRequest) -> HttpResponse:
    prepared = urllib.request.Request(  # noqa: S310 - the scheme was checked by network.check_url
        request.url, data=request.body, headers=dict(request.headers), method=request.method
    )
    try:
        with opener.open(prepared, timeout=request.timeout_s) as answer:
            return HttpResponse(answer.status, _read(answer), dict(answer.headers.items()))
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResponse(exc.code, _read(exc), dict(exc.headers.items()) if exc.headers else {})
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, RefusedPeer):
            raise exc.reason from exc
        if isinstance(exc.reason, TimeoutError):
            raise TimeoutError(f"no answer within {request.timeout_s} s") from exc
        raise ConnectionError(f"cannot reach the host: {exc.reason}") from exc
    except TimeoutError as exc:  # a read that timed out after the connection was made
        raise TimeoutError(f"no answer within {request.timeout_s} s") from exc
    except ConnectionError:
        raise
    except (OSError, ValueError) as exc:  # reset connections, malformed status lines (http.client)
        raise ConnectionError(f"the connection failed: {type(exc).__name__}") from exc


def post_json(send: Send, url: str, payload: Mapping[str, Any], timeout_s: float,
              headers: Mapping[str, str] | None = None) -> HttpResponse:
    """POST `payload` as JSON through `send`. Raises what `send` raises."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    return send(HttpRequest("POST", url, all_headers, body, timeout_s))


def _read(answer: Any) -> bytes:
    body: bytes = answer.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ConnectionError(f"the answer is larger than {MAX_BODY_BYTES} bytes")
    return body
