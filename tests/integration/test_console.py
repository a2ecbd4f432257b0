"""The operator console in Debian's headless chromium, against the real local stack (`make run`).

moto_server, redis-server, `chalice local` and the queue worker run as `python -m infra.local`
starts them; the browser signs in with the banner's tenant key and uses the console as a person
would. Needs /usr/bin/chromium (the Makefile's `browser` target installs it) and playwright (its
own browsers are not used). RUCHE_CONSOLE_SCREENSHOTS=docs/console refreshes the README's pictures.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.integration.conftest import LocalStack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
DESK = "console-desk"  # two sessions, one of them regenerated then fell back
TRY = "console-try"  # the try-it panel's
ROLL = "console-roll"  # two versions, for the rollback
GONE = "console-gone"  # deleted after its one session

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed (`make browser`: apt-get install chromium)"),
]


def desk_bundle(name: str = "Desk") -> dict[str, Any]:
    """An agent whose offline draft for a delivery question breaks its own hard constraint."""
    return {
        "agent": {"name": name},
        "templates": [{"id": "safe", "mode": "fallback", "text": "A colleague will get back to you."},
                      {"id": "promise", "mode": "suggest", "text": "We guarantee delivery tomorrow."}],
        "rules": [
            {"id": "delivery_promise", "condition": "the customer asks when the delivery arrives",
             "action": "tell the customer that we guarantee delivery tomorrow", "templates": ["promise"]},
            {"id": "no_guarantees", "condition": "any reply", "action": "never guarantee anything",
             "hard_constraint": True, "expression": 'not contains(reply, "guarantee")'},
            {"id": "human", "condition": "the customer asks to speak to a human person",
             "action": "tell the customer a colleague will take over", "handoff": True},
        ],
    }


@dataclass
class World:
    """What the tests share: the stack, and sessions made through the HTTP API before the browser looks."""

    stack: LocalStack
    fallback_session: str
    handoff_session: str
    gone_session: str

    @property
    def console_url(self) -> str:
        return self.stack.banner_value("Console")  # the URL `make run` prints

    def call(self, method: str, path: str, key: str | None = None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {key or self.stack.tenant_key}"}
        response = requests.request(method, f"{self.stack.api_url}{path}", headers=headers, json=body, timeout=60)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def turn(self, agent_id: str, user_id: str, message: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", f"/v1/agents/{agent_id}/turns",
                                           body={"user_id": user_id, "message": message})
        return answer


@pytest.fixture(scope="module")
def world(local_stack: LocalStack) -> World:
    probe = World(local_stack, "", "", "")
    for agent_id in (DESK, TRY, ROLL, GONE):
        probe.call("PUT", f"/v1/agents/{agent_id}", body=desk_bundle())
    probe.call("PUT", f"/v1/agents/{ROLL}", body=desk_bundle("Desk, second edition"))  # v2: rollback has a target
    handed = probe.turn(DESK, "ana", "I want to speak to a human person")
    assert handed["outcome"]["handoff"]
    probe.call("POST", f"/v1/agents/{DESK}/turns",
               body={"user_id": "ana", "message": "hello?", "session_id": handed["session_id"]})
    fell_back = probe.turn(DESK, "bob", "when does the delivery arrive?")
    assert fell_back["outcome"]["fallback_used"] and fell_back["outcome"]["regeneration_attempts"] == 2
    gone = probe.turn(GONE, "cid", "hello")
    probe.call("DELETE", f"/v1/agents/{GONE}")
    return World(local_stack, fell_back["session_id"], handed["session_id"], gone["session_id"])


@dataclass
class Console:
    """One browser tab on the console, with everything the browser reported."""

    page: Page
    world: World
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.world.console_url}{route}")

    def sign_in(self, key: str | None = None) -> None:
        self.page.fill("#key", key or self.world.stack.tenant_key)
        self.page.click("#login-form button[type=submit]")

    def shot(self, name: str, *, full_page: bool = False) -> None:
        folder = os.environ.get("RUCHE_CONSOLE_SCREENSHOTS")
        if folder:
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)

    def unexpected_console_errors(self, *refused_statuses: int) -> list[str]:
        """Console errors besides the browser's own note on an answer we provoked on purpose."""
        expected = tuple(f"status of {status}" for status in refused_statuses)
        return [text for text in self.console_errors if not ("Failed to load resource" in text and
                                                              any(part in text for part in expected))]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def console(browser: Browser, world: World) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1180, "height": 820})
    page = context.new_page()
    # chalice local answers one request at a time and shares 2 cores with the fault suite's stack
    # in `make test`: allow a slow answer, a missing one still fails.
    page.set_default_timeout(30_000)
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    tab = Console(page, world)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
    yield tab
    context.close()
    assert tab.page_errors == []  # never an uncaught error, whatever the test provoked


def test_the_page_is_served_with_headers_that_forbid_inline_script_sniffing_and_framing(world: World) -> None:
    assert world.console_url == f"{world.stack.api_url}/v1/console"
    response = requests.get(world.console_url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.text and "http" not in response.text.split("<body>")[0].replace("http-equiv", "")
    script = requests.get(f"{world.console_url}/app.js", timeout=10)
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert requests.get(f"{world.console_url}/..%2Fconsole.py", timeout=10).status_code == 404


def test_a_bad_key_is_refused_with_a_message_and_the_right_one_opens_the_agents(console: Console) -> None:
    from playwright.sync_api import expect

    console.open()
    console.sign_in("rk_not-a-key")
    expect(console.page.locator("#notice")).to_contain_text("This key was not accepted")
    expect(console.page.locator("#login-form")).to_be_visible()
    console.sign_in()
    agents = console.page.locator("#agents")
    expect(agents).to_contain_text("retail-returns")
    expect(agents).to_contain_text(DESK)
    expect(agents.locator("tr", has_text=ROLL)).to_contain_text("v2")
    assert console.page.evaluate("sessionStorage.getItem('ruche-console-key')") == console.world.stack.tenant_key
    assert console.page.evaluate("localStorage.length") == 0  # the key never outlives the tab
    assert console.unexpected_console_errors(401) == []


def test_a_regenerated_reply_shows_each_violation_and_the_fallback_reason(console: Console) -> None:
    from playwright.sync_api import expect

    console.open(f"#/sessions/{DESK}")
    console.sign_in()
    page = console.page
    expect(page.locator("#sessions tbody tr")).to_have_count(2)
    console.shot("sessions")
    page.select_option("#session-filters select[name=fallback]", "true")
    page.click("#session-filters button[type=submit]")
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    page.click(f"#sessions a:has-text('{console.world.fallback_session}')")
    reply = page.locator("#transcript .turn").first
    expect(reply.locator(".msg.agent")).to_contain_text("A colleague will get back to you.")
    expect(reply.locator(".badge", has_text="regenerated")).to_have_text("regenerated ×2")
    reply.locator("summary", has_text="Why this reply").click()
    drafts = reply.locator(".attempt")
    expect(drafts).to_have_count(3)
    expect(drafts.first.locator(".draft")).to_contain_text("guarantee delivery tomorrow")
    expect(drafts.first.locator(".violation")).to_contain_text("no_guarantees")
    expect(reply.locator(".fallback")).to_contain_text("The fallback fired")
    expect(reply.locator(".fallback")).to_contain_text("“safe”")
    expect(reply.locator(".part-rules")).to_contain_text("delivery_promise")
    console.shot("session")
    assert console.console_errors == []


def test_filtered_sessions_stay_on_screen_when_the_unfiltered_list_answers_last(console: Console) -> None:
    from playwright.sync_api import Route, expect

    held: list[Route] = []

    def hold_unfiltered(route: Route) -> None:
        if "handoff=" in route.request.url:
            route.continue_()
        else:
            held.append(route)  # the page's first listing answers only after the filtered one

    console.page.route("**/sessions?*", hold_unfiltered)
    console.open(f"#/sessions/{DESK}")
    console.sign_in()
    page = console.page
    page.wait_for_selector("#session-filters")
    page.select_option("#session-filters select[name=handoff]", "true")
    page.click("#session-filters button[type=submit]")
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    assert held, "the unfiltered listing was never asked for"
    for route in held:
        route.continue_()
    page.wait_for_load_state("networkidle")

    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    expect(page.locator("#sessions tbody tr")).to_contain_text("handoff")


def test_a_handed_over_session_shows_the_handoff_and_the_silent_turn_after_it(console: Console) -> None:
    from playwright.sync_api import expect

    console.open(f"#/sessions/{DESK}")
    console.sign_in()
    page = console.page
    page.select_option("#session-filters select[name=handoff]", "true")
    page.click("#session-filters button[type=submit]")
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    expect(page.locator("#sessions tbody tr")).to_contain_text("handoff")
    page.click(f"#sessions a:has-text('{console.world.handoff_session}')")
    turns = page.locator("#transcript .turn")
    expect(turns).to_have_count(2)
    expect(turns.first.locator(".badge", has_text="handoff")).to_be_visible()
    expect(turns.last.locator(".msg.agent")).to_have_text("No reply: the session is handed over to a person.")
    assert console.console_errors == []


def test_the_try_it_panel_sends_a_message_and_shows_the_reply_with_its_explanation(console: Console) -> None:
    from playwright.sync_api import expect

    console.open(f"#/try/{TRY}")
    console.sign_in()
    page = console.page
    page.fill("#try-form input[name=message]", "when does the delivery arrive?")
    page.click("#try-form button[type=submit]")
    turn = page.locator("#try-log .turn").last
    expect(turn.locator(".msg.agent")).to_contain_text("A colleague will get back to you.")
    expect(turn.locator("details.why")).to_have_attribute("open", "")
    expect(turn.locator(".violation").first).to_contain_text("no_guarantees")
    session_id = page.locator("#try-session a").inner_text()
    listed = console.world.call("GET", f"/v1/agents/{TRY}/sessions")["sessions"]
    assert [row["session_id"] for row in listed] == [session_id]  # the panel's turn is a real session
    console.shot("try-it")
    assert console.console_errors == []


def test_the_numbers_chart_the_days_turns_and_fallbacks_and_name_the_violated_rule(console: Console) -> None:
    from playwright.sync_api import expect

    session = console.world.fallback_session
    day = console.world.call("GET", f"/v1/agents/{DESK}/sessions/{session}/turns")["turns"][0]["created_at"][:10]
    console.open("#/numbers")
    console.sign_in()
    page = console.page
    week_before = (dt.date.fromisoformat(day) - dt.timedelta(days=6)).isoformat()
    page.fill("#range input[name=from]", week_before)
    page.fill("#range input[name=to]", day)
    page.select_option("#range select[name=agent]", DESK)
    page.click("#range button[type=submit]")
    expect(page.locator("#usage .totals")).to_contain_text(f"({week_before} to {day})")
    expect(page.locator("#chart-turns g.day")).to_have_count(7)
    today = f"g.day[data-date='{day}'] rect.bar"
    turns = page.locator(f"#chart-turns {today}")
    expect(turns).to_have_attribute("data-value", "3")  # the fixture's three turns in two sessions
    assert float(turns.get_attribute("height") or 0) > 0
    expect(page.locator(f"#chart-fallback {today}")).to_have_attribute("data-value", "33.33")  # 1 of 3 turns, %
    expect(page.locator(f"#chart-regeneration {today}")).to_have_attribute("data-value", "66.67")  # 2 per 3 turns
    expect(page.locator("#chart-tokens figcaption")).to_contain_text("(tokens)")
    expect(page.locator("#chart-turns .tick text").last).to_have_text("3")  # the y axis tops at the tallest bar
    expect(page.locator("#chart-violations .rank")).to_contain_text("no_guarantees")
    expect(page.locator("#chart-violations .rank")).to_contain_text("3 drafts")
    console.shot("numbers", full_page=True)
    assert console.console_errors == []


def test_a_rollback_asks_to_confirm_then_republishes_the_older_version(console: Console) -> None:
    from playwright.sync_api import expect

    console.open(f"#/agents/{ROLL}")
    console.sign_in()
    page = console.page
    page.click("#version-table button:has-text('Roll back to v1')")
    expect(page.locator("#version-table .confirm")).to_contain_text("Republish v1")
    console.shot("agents")
    page.click("#version-table button:has-text('Cancel')")
    expect(page.locator("#version-table .confirm")).to_have_count(0)
    page.click("#version-table button:has-text('Roll back to v1')")
    page.click("#version-table button:has-text('Confirm rollback')")
    expect(page.locator("#notice")).to_contain_text("v1 republished as v3")
    expect(page.locator("#agents tr", has_text=ROLL)).to_contain_text("v3")
    assert console.world.call("GET", f"/v1/agents/{ROLL}")["agent"]["name"] == "Desk"
    assert console.console_errors == []


def test_a_session_whose_agent_was_deleted_still_opens_with_a_clear_message(console: Console) -> None:
    from playwright.sync_api import expect

    console.open(f"#/sessions/{GONE}/{console.world.gone_session}")
    console.sign_in()
    expect(console.page.locator(".message.warn")).to_contain_text(f"The agent “{GONE}” has been deleted")
    expect(console.page.locator("#transcript .turn")).to_have_count(1)
    assert console.console_errors == []


def test_an_empty_tenant_is_told_it_has_no_agents(console: Console) -> None:
    from playwright.sync_api import expect

    admin = console.world.stack.banner_value("Admin key")
    created = console.world.call("POST", "/v1/tenants", admin, {"name": "empty"})
    console.open()
    console.sign_in(created["api_key"])
    expect(console.page.locator("main")).to_contain_text("This tenant has no agents yet")
    console.page.click("#nav a[data-view=sessions]")
    expect(console.page.locator("main")).to_contain_text("no agents yet, so no sessions either")
    assert console.console_errors == []


def test_a_key_revoked_while_signed_in_sends_the_user_back_to_sign_in_with_the_reason(console: Console) -> None:
    from playwright.sync_api import expect

    fresh = console.world.call("POST", "/v1/keys")
    console.open()
    console.sign_in(fresh["api_key"])
    expect(console.page.locator("#agents")).to_contain_text(DESK)
    console.world.call("DELETE", f"/v1/keys/{fresh['key_id']}")
    console.page.click("#nav a[data-view=sessions]")
    expect(console.page.locator("#notice")).to_contain_text("no longer accepted: it was revoked or has expired")
    expect(console.page.locator("#login-form")).to_be_visible()
    assert console.page.evaluate("sessionStorage.length") == 0
    assert console.unexpected_console_errors(401) == []
