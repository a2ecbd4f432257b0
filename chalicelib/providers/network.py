"""The outbound network guard: refuse LLM and tool URLs that reach private or loopback addresses.

API.md: "Tools and LLM base URLs that resolve to loopback, private or link-local addresses are
refused unless the platform config allows them (`network.allow_private`)". A tenant-chosen URL is
a server-side request forgery vector: 169.254.169.254 hands out the Lambda's credentials.

Two moments, two errors:
- at publish time (`at_publish=True`) a bad URL is the tenant's input: InvalidInput. A host name
  that does not resolve yet is accepted then, because DNS can change before the first call.
- at call time (the default) the same check raises BlockedDestination (a ProviderError), and an
  unresolvable host raises it too: nothing would be reachable anyway.

The check resolves the host with getaddrinfo and judges every address it returns, so a name with
one public and one private address is refused. It never opens a connection.
Known limit: urllib resolves the name again when it connects (a DNS-rebinding window).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.llm import ProviderError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_SCHEMES = frozenset({"http", "https"})


class BlockedDestination(ProviderError):
    """A call-time refusal: the URL's scheme is not http(s) or its host is not public."""


def check_url(url: str, allow_private: bool, *, at_publish: bool = False, path: str = "url") -> None:
    """Return None when `url` may be called; raise otherwise.

    Raises InvalidInput (at_publish=True, with `path` in details.errors) or BlockedDestination
    (call time). With allow_private, private and loopback hosts pass; the scheme is still checked.
    """
    problem = _problem(url, allow_private, at_publish=at_publish)
    if problem is None:
        return
    if at_publish:
        raise InvalidInput.at(path, problem)
    raise BlockedDestination(problem, reason="blocked_destination")


def is_public(address: IpAddress) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    blocked = (
        address.is_loopback
        or address.is_private  # 10/8, 172.16/12, 192.168/16, fc00::/7, and more
        or address.is_link_local  # 169.254/16 (the metadata service), fe80::/10
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or not address.is_global  # shared 100.64/10, documentation ranges, ...
    )
    return not blocked


def _problem(url: str, allow_private: bool, *, at_publish: bool) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "only http and https URLs are allowed"
    host = parts.hostname
    if not host:
        return "has no host"
    if allow_private:
        return None
    addresses = _resolve(host, port or (443 if parts.scheme.lower() == "https" else 80))
    if addresses is None:
        return None if at_publish else f"host {host!r} does not resolve"
    refused = sorted({str(address) for address in addresses if not is_public(address)})
    if refused:
        return (f"host {host!r} resolves to a private, loopback or link-local address "
                f"({', '.join(refused)}); refused unless network.allow_private is set")
    return None


def _resolve(host: str, port: int) -> list[IpAddress] | None:
    """Every address the host resolves to; None when it does not resolve. No connection is made."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return None
    addresses: list[IpAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id ("fe80::1%eth0")
        addresses.append(ipaddress.ip_address(raw))
    return addresses or None
