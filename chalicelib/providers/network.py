"""The outbound network guard: refuse LLM and tool URLs that reach private or loopback addresses.

API.md: "Tools and LLM base URLs that resolve to loopback, private or link-local addresses are
refused unless the platform config allows them (`network.allow_private`)". A tenant-chosen URL is
a server-side request forgery vector: 169.254.169.254 hands out the Lambda's credentials.

Two moments, two errors:
- at publish time (`at_publish=True`) a bad URL is the tenant's input: InvalidInput. A host name
  that does not resolve yet is accepted then, because DNS can change before the first call.
- at call time (the default) the same check raises BlockedDestination (a ProviderError), and an
  unresolvable host raises it too: nothing would be reachable anyway.

Before any resolution the URL's form is judged (`url_form_problem`): the host must be a plain DNS
name or a canonical IP literal. urllib unquotes a host before connecting, so
`http://%31%32%37.0.0.1/` would reach 127.0.0.1 although no resolver sees that name; userinfo,
numeric shorthands (`127.1`, `2130706433`, `0x7f.1`) and other odd forms are refused the same way.

The check resolves the host with getaddrinfo and judges every address it returns, so a name with
one public and one private address is refused. It never opens a connection, and a refusal never
names the addresses a host resolves to (that would let a tenant map the platform's network).
The transport resolves the name again when it connects: providers/transport.guarded_send closes that
DNS-rebinding window by judging the address each connection reached.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.llm import ProviderError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_SCHEMES = frozenset({"http", "https"})
# Printable ASCII without space, backslash or quotes: anything else is an odd form some parser
# reads differently from another (WHATWG turns "\\" into "/", urllib keeps it in the host).
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
# Underscores are not DNS hostname syntax, but container and intranet names use them, and no
# parser reads them as anything else.
_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


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


def url_form_problem(url: str) -> str | None:
    """Why `url` is not a plain http(s) URL with a DNS name or canonical IP literal; None when it is.

    Pure: resolves nothing. Refuses percent-escapes, userinfo, non-ASCII, whitespace, backslashes
    and numeric host shorthands, because parsers disagree about them (an SSRF classic).
    """
    if not _URL_CHARACTERS.fullmatch(url):
        return "must be a plain ASCII URL (no spaces, backslashes or non-ASCII characters)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number in range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return "only http and https URLs are allowed"
    if "@" in parts.netloc:
        return "must not carry a user name or password in the host part"
    if "%" in parts.netloc:
        return "the host must not contain percent-escapes"
    host = parts.hostname
    if not host:
        return "has no host"
    if _is_ip_literal(host, bracketed=parts.netloc.startswith("[")) or _is_dns_name(host):
        return None
    return "the host must be a DNS name or an IP address written in full (like 203.0.113.7)"


def _is_ip_literal(host: str, *, bracketed: bool) -> bool:
    """A canonical IPv4 dotted quad, or an IPv6 address inside brackets (ipaddress refuses shorthands)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return bracketed == isinstance(address, ipaddress.IPv6Address)


def _is_dns_name(host: str) -> bool:
    """Letters, digits and hyphens in dot-separated labels, and a last label that is not a number:
    `127.1` or `0x7f.1` would otherwise reach getaddrinfo, which reads them as IPv4 addresses."""
    labels = host.split(".")
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    last = labels[-1]
    return not (last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])))


def _problem(url: str, allow_private: bool, *, at_publish: bool) -> str | None:
    form = url_form_problem(url)
    if form is not None:
        return form
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allow_private:
        return None
    addresses = _resolve(host, parts.port or (443 if parts.scheme.lower() == "https" else 80))
    if addresses is None:
        return None if at_publish else f"host {host!r} does not resolve"
    if any(not is_public(address) for address in addresses):
        # Never say what the host resolved to: that would map the platform's network for a tenant.
        return (f"host {host!r} is on a private, loopback or link-local network; "
                "refused unless network.allow_private is set")
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
