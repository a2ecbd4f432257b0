"""The webchat page defends itself: a Content-Security-Policy, nosniff, and a framing policy.

Header checks over the app's HTTP path, and Debian's headless chromium to show the policy is what a
browser enforces: the page still works, and a script injected into it does not run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.domain.channel import ChannelName
from tests.api.harness import Api, a_bundle, paths_of
from tests.channels.factories import SECRETS
from tests.test_webchat_page import CHROMIUM, CHROMIUM_ARGS, AppServer, served

__all__ = ["served"]


def webchat(api: Api, **config: object) -> tuple[str, str]:
    """(tenant key, binding id) of a webchat binding with this config."""
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    created = api.call("POST", "/v1/agents/support/channels", key,
                       {"channel": "webchat", "secrets": SECRETS[ChannelName.WEBCHAT], "config": config})
    assert created.status_code == 201, created.body
    return key, str(created.json_body["binding_id"])


def directives(policy: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2] for part in policy.split(";")}


def test_the_page_forbids_everything_but_its_own_script_style_and_origin(api: Api) -> None:
    _, binding_id = webchat(api)
    response = api.call("GET", f"/v1/webhooks/webchat/{binding_id}/page")
    assert response.status_code == 200
    headers = {name.lower(): value for name, value in response.headers.items()}
    policy = directives(headers["content-security-policy"])
    assert policy["default-src"] == "'none'"
    assert policy["script-src"].startswith("'sha256-") and "unsafe" not in policy["script-src"]
    assert policy["style-src"].startswith("'sha256-") and "unsafe" not in policy["style-src"]
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and headers["x-frame-options"] == "DENY"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"].startswith("text/html")


def test_the_origins_named_on_the_binding_may_frame_the_page(api: Api) -> None:
    origins = ["https://shop.example.com", "https://www.example.org:8443"]
    _, binding_id = webchat(api, embed_origins=origins)
    response = api.call("GET", f"/v1/webhooks/webchat/{binding_id}/page")
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert directives(headers["content-security-policy"])["frame-ancestors"] == " ".join(origins)
    assert "x-frame-options" not in headers  # it cannot list origins; frame-ancestors does


def test_embedding_origins_that_are_not_bare_origins_are_422(api: Api) -> None:
    _, key = api.new_tenant()
    assert api.call("PUT", "/v1/agents/support", key, a_bundle()).status_code == 200
    bad = ["https://shop.example.com; script-src *", "https://shop.example.com;script-src", "https://a.example/x",
           "javascript:alert(1)", "*", "https://user@a.example", 42]
    response = api.call("POST", "/v1/agents/support/channels", key, {
        "channel": "webchat", "secrets": SECRETS[ChannelName.WEBCHAT], "config": {"embed_origins": bad}})
    assert response.status_code == 422
    assert paths_of(response) == [f"config.embed_origins[{index}]" for index in range(len(bad))]
    not_a_list = api.call("POST", "/v1/agents/support/channels", key, {
        "channel": "webchat", "secrets": SECRETS[ChannelName.WEBCHAT], "config": {"embed_origins": "*"}})
    assert paths_of(not_a_list) == ["config.embed_origins"]


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_a_script_injected_into_the_page_does_not_run_in_the_browser(api: Api, served: AppServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    _, binding_id = webchat(api)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{served.url}/v1/webhooks/webchat/{binding_id}/page")
            expect(page.locator("#composer")).to_be_visible()
            # What an HTML injection would do: add markup that carries script.
            page.evaluate("""() => {
                const script = document.createElement("script");
                script.textContent = "window.injected = 'ran'";
                document.body.appendChild(script);
                const image = document.createElement("img");
                image.setAttribute("src", "x");
                image.setAttribute("onerror", "window.handler = 'ran'");
                document.body.appendChild(image);
            }""")
            page.wait_for_timeout(500)
            assert page.evaluate("window.injected === undefined && window.handler === undefined")
            # The control: the page's own script (allowed by its hash) runs and renders the message.
            page.fill("#text", "Hello")
            page.click("#send")
            expect(page.locator(".msg.user")).to_have_text("Hello")
        finally:
            browser.close()
