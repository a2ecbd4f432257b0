"""The outbound network guard: private, loopback and link-local destinations are refused.

No test here opens a connection: the guard only resolves names, and IP literals are not even
resolved. Nothing is ever sent outside 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.providers.llm import ProviderError
from chalicelib.providers.network import BlockedDestination, check_url, is_public, url_form_problem

REFUSED = [
    "http://127.0.0.1:8080/v1",
    "http://10.0.0.1/tool",
    "http://172.16.5.4/tool",
    "https://192.168.1.10/tool",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8000/v1",
    "http://[fe80::1]/x",
    "http://[fd00::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://0.0.0.0/x",
    "http://224.0.0.1/x",
    "http://100.64.0.1/x",
    "http://localhost:11434/v1",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_non_public_destination_is_refused_at_call_time(url: str) -> None:
    with pytest.raises(BlockedDestination, match="private, loopback or link-local"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", REFUSED)
def test_a_non_public_destination_is_allowed_with_allow_private(url: str) -> None:
    check_url(url, allow_private=True)


def test_a_refusal_at_publish_time_is_invalid_input_at_the_given_path() -> None:
    with pytest.raises(InvalidInput) as raised:
        check_url("http://169.254.169.254/", allow_private=False, at_publish=True, path="tools[0].url")
    assert raised.value.details["errors"][0]["path"] == "tools[0].url"
    assert "169.254.169.254" in raised.value.details["errors"][0]["message"]


def test_a_public_ip_literal_is_accepted_without_connecting() -> None:
    check_url("https://93.184.216.34/v1", allow_private=False)
    check_url("http://[2606:2800:220:1:248:1893:25c8:1946]:8443/x", allow_private=False)


NOT_HTTP = ["ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://127.0.0.1/", "93.184.216.34"]


@pytest.mark.parametrize("url", NOT_HTTP)
def test_only_http_and_https_are_allowed_even_with_allow_private(url: str) -> None:
    with pytest.raises(BlockedDestination, match="only http and https"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://", "http://[::1/x", "http://h:99999/"])
def test_a_url_without_a_usable_host_is_refused(url: str) -> None:
    with pytest.raises(BlockedDestination):
        check_url(url, allow_private=True)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """Resolve names from a table instead of asking a DNS server (no traffic leaves the machine)."""
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (address, port)) for address in answers[host]]
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_host_that_does_not_resolve_is_refused_at_call_time_but_accepted_at_publish(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    url = "https://tools.example.invalid/v1"
    with pytest.raises(BlockedDestination, match="does not resolve"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=False, at_publish=True)


def test_a_name_is_refused_when_any_of_its_addresses_is_private(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"rebind.example.com": ["93.184.216.34", "10.1.2.3"],
                           "llm.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
                           "zoned.example.com": ["fe80::1%eth0"]})
    with pytest.raises(BlockedDestination, match="private") as rebind:
        check_url("https://rebind.example.com/v1", allow_private=False)
    with pytest.raises(BlockedDestination, match="private") as zoned:
        check_url("https://zoned.example.com/v1", allow_private=False)
    check_url("https://llm.example.com/v1", allow_private=False)
    # The refusal never says where the name led (a tenant would map the network with it).
    assert "10.1.2.3" not in str(rebind.value) and "fe80" not in str(zoned.value)


def test_the_refusal_is_a_provider_error_so_llm_callers_handle_it_like_any_provider_failure() -> None:
    assert issubclass(BlockedDestination, ProviderError)


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "93.184.216.34"])
def test_global_unicast_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://ollama_host:11434/v1",
                                 "http://[2001:db8::1]:8080/x", "https://203.0.113.7/x", "http://localhost:8000"])
def test_plain_hosts_have_no_form_problem(url: str) -> None:
    assert url_form_problem(url) is None


@pytest.mark.parametrize("url", ["http://%6c%6f%63%61%6c%68%6f%73%74/", "http://a@b.example/", "http://127.1/",
                                 "http://2130706433/", "http://0x7f.0.0.1/", "http://[127.0.0.1]/", "http://a.b./",
                                 "http://b\u00fccher.example/", "http://a b.example/", "http://a.example\\@b/"])
def test_odd_hosts_have_a_form_problem_even_with_allow_private(url: str) -> None:
    assert url_form_problem(url) is not None
    with pytest.raises(BlockedDestination):
        check_url(url, allow_private=True)
