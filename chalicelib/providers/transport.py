"""The HTTP transport providers and the tool client share: one `send` callable, pooled urllib3 inside.

Like an httpx transport (STYLE.md), a transport is one function from request to response, so tests
can pass a plain function and production uses `guarded_send`. The contract of a `Send`:
- any HTTP status comes back as an HttpResponse (4xx and 5xx are not exceptions);
- a timeout raises TimeoutError, an unreachable host raises ConnectionError.
No redirect is followed (a redirect to 169.254.169.254 would dodge the network guard) and proxy
environment variables are ignored (the guard judges the host we actually connect to).

`guarded_send(allow_private)` is the one transport for every outbound request (LLM, embeddings,
tools, event endpoints, channel delivery). It runs network.check_url on each request's URL (its
form, its scheme, where its host resolves) before a pooled connection is taken, so a host that
the guard now refuses gets nothing, not even over a connection opened while it was public. Without
allow_private it also judges the address each new connection reached, right after TCP connect and
before TLS: a name that resolved to a public address when the check looked and to a private one
when we connected (DNS rebinding) is closed before a byte is sent.

Connections are kept alive: each guard mode has one urllib3 PoolManager per process (container),
thread-safe, keyed by scheme, host and port, so a warm turn reuses the TLS sessions of the last one
and a connection never serves another host. The two modes never share a connection.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as PoolTimeout

from chalicelib.providers.network import check_url, is_public

MAX_BODY_BYTES = 4 * 1024 * 1024  # an answer larger than this is not a chat completion or a tool result
POOLED_HOSTS = 32  # hosts kept per guard mode (LLM, embeddings, tools, channels); the least recent is closed
CONNECTIONS_PER_HOST = 4  # idle keep-alive connections kept per host; a burst beyond opens extra, unkept ones


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


class RefusedPeer(ConnectionError):
    """The connection reached a loopback, private or link-local address: closed unused."""


def _judged(sock: socket.socket, host: str) -> socket.socket:
    address = ipaddress.ip_address(str(sock.getpeername()[0]).split("%")[0])
    if not is_public(address):
        sock.close()
        # The address stays out of the message: it would map the platform's network for a tenant.
        raise RefusedPeer(f"refused: {host} is on a private network when connecting")
    return sock


# urllib3 opens the TCP socket in _new_conn and only then starts TLS on it: judging the peer there
# means a refused address receives no ClientHello either.
class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _judged(super()._new_conn(), self.host)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _judged(super()._new_conn(), self.host)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class PooledTransport:
    """A `Send` over keep-alive connections. Thread-safe; `guarded_send` holds one per guard mode.

    Without allow_private, each URL must lead to public addresses and each new connection must reach
    one (RefusedPeer otherwise). Raises BlockedDestination (a ProviderError) for a refused URL,
    TimeoutError and ConnectionError as the `Send` contract says.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._manager = urllib3.PoolManager(num_pools=POOLED_HOSTS, maxsize=CONNECTIONS_PER_HOST)
        if not allow_private:
            self._manager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        check_url(request.url, allow_private=self._allow_private)  # before any pooled connection is taken
        timeout = urllib3.Timeout(connect=request.timeout_s, read=request.timeout_s)
        try:
            answer = self._manager.urlopen(
                request.method, request.url, body=request.body, headers=dict(request.headers),
                timeout=timeout, retries=False, redirect=False, preload_content=False, decode_content=False,
            )
            try:
                return HttpResponse(answer.status, _read(answer), dict(answer.headers.items()))
            except BaseException:
                answer.close()  # a half-read answer would be read as the next request's answer
                raise
            finally:
                answer.release_conn()
        except NewConnectionError as exc:  # before PoolTimeout: urllib3 files it under connect timeouts
            raise ConnectionError(f"cannot reach the host: {type(exc).__name__}") from exc
        except PoolTimeout as exc:
            raise TimeoutError(f"no answer within {request.timeout_s} s") from exc
        except HTTPError as exc:  # reset connections, malformed answers, TLS failures
            refused = _refusal_in(exc)
            if refused is not None:
                raise refused from exc
            raise ConnectionError(f"the connection failed: {_name_of(exc)}") from exc
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {request.timeout_s} s") from exc
        except ConnectionError:
            raise
        except (OSError, ValueError) as exc:
            raise ConnectionError(f"the connection failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Close every pooled connection (the next request opens new ones)."""
        self._manager.clear()


_TRANSPORTS = {allow: PooledTransport(allow_private=allow) for allow in (False, True)}


def guarded_send(allow_private: bool) -> Send:
    """The process's pooled transport for this guard mode: each URL is checked, then (without
    allow_private) each new connection's peer. Raises BlockedDestination (a ProviderError) for a
    refused URL."""
    return _TRANSPORTS[allow_private]


def post_json(send: Send, url: str, payload: Mapping[str, Any], timeout_s: float,
              headers: Mapping[str, str] | None = None) -> HttpResponse:
    """POST `payload` as JSON through `send`. Raises what `send` raises."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    return send(HttpRequest("POST", url, all_headers, body, timeout_s))


def _read(answer: urllib3.BaseHTTPResponse) -> bytes:
    body = answer.read(MAX_BODY_BYTES + 1, decode_content=False)
    if len(body) > MAX_BODY_BYTES:
        raise ConnectionError(f"the answer is larger than {MAX_BODY_BYTES} bytes")
    return body


def _refusal_in(exc: BaseException) -> RefusedPeer | None:
    """The RefusedPeer urllib3 wrapped (as ProtocolError("Connection aborted.", cause)), if any."""
    causes = [*exc.args, exc.__cause__, exc.__context__]
    return next((cause for cause in causes if isinstance(cause, RefusedPeer)), None)


def _name_of(exc: HTTPError) -> str:
    """The underlying error's class name (urllib3 wraps socket and http.client errors)."""
    wrapped = [arg for arg in exc.args if isinstance(arg, BaseException)]
    return type(wrapped[0]).__name__ if wrapped else type(exc).__name__
