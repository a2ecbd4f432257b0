"""Load and faults on the queue path over the real local stack; shared by tests/faults/ and bench/queue_faults.py.

Users send asynchronous API turns (202) and webchat visitors send messages (202, each POSTed twice:
a redelivery) while the stack is hurt on purpose: the worker SIGKILLs itself at named points
(RUCHE_FAULT_POINTS, runtime/faults.py) and is SIGKILLed from outside every few seconds, a share of
turn commits fail as a DynamoDB 500, redis-server is SIGKILLed once (infra/local.py starts it
again, empty), chalice local is SIGKILLed once, and the worker is stopped (SIGSTOP) while one user
piles up a backlog. Then everything the stack said it accepted is read back from the transcripts
and turn records and checked: nothing lost, nothing twice, in order, one reply per logical turn,
each turn id once, no 5xx.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

AGENT = "helpdesk"
BUNDLE: dict[str, Any] = {
    "agent": {"name": "Helpdesk", "config": {"enforcement": {"max_regeneration_attempts": 1}}},
    "templates": [{"id": "safe", "mode": "fallback", "text": "Someone will get back to you."}],
    "rules": [{"id": "greet", "condition": "the user says hello", "action": "Greet the user warmly."}],
}
USERS_PER_TENANT = 10  # keeps each tenant under its default rate limit (600 requests a minute)
MAX_MESSAGES_PER_TURN = 20  # runtime/worker.py
FAULT_POINTS = "after_inbox_read:{p},after_commit:{p},before_delete:{p},commit_error:{e}"
VISIBILITY_TIMEOUT_S = 20  # a killed worker's records come back after this (the template says 120)


@dataclass(frozen=True)
class Size:
    """How hard to push. CI runs the default; RUCHE_FAULT_SIZE=full is the issue's 50 users x 40 turns
    and a 300-message backlog."""

    users: int = 4
    messages: int = 8
    backlog: int = 100  # over the 97 that used to need a 100-item transaction; full size: 300
    visitors: int = 2
    visitor_messages: int = 4
    kill_worker_every_s: float = 30.0  # of each worker's life (a start takes ~15 s on a busy box)
    restart_redis_at_s: float = 20.0  # into the run, while the users are still sending
    kill_api_at_s: float = 40.0
    kill_chance: float = 0.01  # per kill point per turn
    commit_error_chance: float = 0.05
    drain_timeout_s: float = 300.0

    @classmethod
    def from_env(cls) -> Size:
        if os.environ.get("RUCHE_FAULT_SIZE") == "full":
            return cls(users=50, messages=40, backlog=300, visitors=10, visitor_messages=10, kill_worker_every_s=20.0,
                       restart_redis_at_s=60.0, kill_api_at_s=120.0, drain_timeout_s=1800.0)
        return cls()

    def worker_env(self) -> dict[str, str]:
        return {"RUCHE_FAULT_POINTS": FAULT_POINTS.format(p=self.kill_chance, e=self.commit_error_chance)}


@dataclass
class Sent:
    """One message a client tried to send, and what the stack answered."""

    text: str
    accepted: bool
    turn_id: str | None = None


@dataclass
class Conversation:
    """One session as its client saw it."""

    tenant_key: str
    user: str
    session_id: str | None = None
    sent: list[Sent] = field(default_factory=list)
    visitor_token: str | None = None  # webchat
    binding: tuple[str, str] | None = None  # webchat: (binding id, binding token)


@dataclass
class Report:
    accepted: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    bad_turns: list[str] = field(default_factory=list)
    repeated_turn_ids: list[str] = field(default_factory=list)
    statuses_5xx: list[int] = field(default_factory=list)
    turns: int = 0
    largest_turn: int = 0
    backlog_turns: int = 0
    replayed: int = 0
    send_s: float = 0.0
    drain_s: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> dict[str, list[Any]]:
        found = {"lost": self.lost, "duplicated": self.duplicated, "out_of_order": self.out_of_order,
                 "bad_turns": self.bad_turns, "repeated_turn_ids": self.repeated_turn_ids,
                 "5xx": self.statuses_5xx}
        return {name: values for name, values in found.items() if values}


class Stack:
    """The running local stack's processes, found under its PID, and its HTTP API."""

    def __init__(self, pid: int, api_url: str, admin_key: str, aws_endpoint: str) -> None:
        self.pid, self.api_url, self.admin_key, self.aws_endpoint = pid, api_url, admin_key, aws_endpoint
        self.statuses_5xx: list[int] = []
        self._http = threading.local()

    def process(self, marker: str) -> int | None:
        """The PID of the stack's child whose command line contains `marker`."""
        for pid in _descendants(self.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                return pid
        return None

    def kill(self, marker: str, signum: int = signal.SIGKILL) -> bool:
        pid = self.process(marker)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        return True

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        """One request; connection errors (chalice local being restarted) are retried here."""
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {key}"
        session = getattr(self._http, "session", None) or requests.Session()
        self._http.session = session
        deadline = time.monotonic() + 120
        while True:
            try:
                response = session.request(method, f"{self.api_url}{path}", headers=headers, timeout=60, **kwargs)
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            if response.status_code >= 500:
                self.statuses_5xx.append(response.status_code)
            return response

    def slow_down_redelivery(self) -> None:
        """A killed worker's records come back after VISIBILITY_TIMEOUT_S instead of 120 s."""
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=self.aws_endpoint,
                           aws_access_key_id="test", aws_secret_access_key="test")
        url = sqs.get_queue_url(QueueName="ruche-dev-turns.fifo")["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)})


def new_tenant(stack: Stack, name: str) -> str:
    created = stack.call("POST", "/v1/tenants", stack.admin_key, json={"name": name})
    assert created.status_code == 201, created.text
    key: str = created.json()["api_key"]
    published = stack.call("PUT", f"/v1/agents/{AGENT}", key, json=BUNDLE)
    assert published.status_code == 200, published.text
    return key


def send_async(stack: Stack, conversation: Conversation, index: int) -> None:
    """Send message `index`; a request cut off (API killed) is retried as a new attempt, since it
    may or may not have been taken. A 429 waits and sends the same text again (it was not taken)."""
    attempt = 0
    while True:
        text = f"{conversation.user} says {index:04d}.{attempt}"
        try:
            response = requests.post(f"{stack.api_url}/v1/agents/{AGENT}/turns?async=true", timeout=30,
                                     headers={"Authorization": f"Bearer {conversation.tenant_key}"},
                                     json={"user_id": conversation.user, "message": text})
        except requests.RequestException:
            conversation.sent.append(Sent(text, accepted=False))
            attempt += 1
            time.sleep(0.5)
            continue
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code >= 500:
            stack.statuses_5xx.append(response.status_code)
            conversation.sent.append(Sent(text, accepted=False))
            attempt += 1
            continue
        assert response.status_code == 202, response.text
        body = response.json()
        conversation.session_id = conversation.session_id or body["session_id"]
        assert body["session_id"] == conversation.session_id
        conversation.sent.append(Sent(text, accepted=True, turn_id=body["turn_id"]))
        return


def send_webchat(stack: Stack, conversation: Conversation, index: int) -> None:
    """Post message `index` twice with the same client message id: the second is a redelivery."""
    assert conversation.binding is not None
    binding_id, token = conversation.binding
    text = f"{conversation.user} says {index:04d}.0"
    for _ in range(2):
        body: dict[str, Any] = {"message": text, "client_message_id": f"c{index}"}
        if conversation.visitor_token:
            body["visitor_token"] = conversation.visitor_token
        response = stack.call("POST", f"/v1/webhooks/webchat/{binding_id}", token, json=body)
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        assert response.status_code == 202, response.text
        answer = response.json()
        conversation.visitor_token = answer["visitor_token"]
        conversation.session_id = answer["session_id"]
    conversation.sent.append(Sent(text, accepted=True))


def run_users(stack: Stack, conversations: list[Conversation], count: int,
              send: Callable[[Stack, Conversation, int], None], pace_s: float = 0.2) -> None:
    """Each conversation sends `count` messages in order, all conversations at once."""

    def one(conversation: Conversation) -> None:
        for index in range(count):
            send(stack, conversation, index)
            time.sleep(random.uniform(0, pace_s))

    threads = [threading.Thread(target=one, args=(conversation,)) for conversation in conversations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def process_age_s(pid: int) -> float:
    """Seconds since the process started (from /proc), 0 when it is gone."""
    try:
        start_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def chaos(stack: Stack, size: Size, faults: dict[str, int]) -> Iterator[threading.Event]:
    """While the block runs: SIGKILL each worker after ~kill_worker_every_s of its life (a restart
    takes seconds on a busy machine, so a fixed clock would kill it before it did anything), and
    once each redis-server and chalice local. Yields an event set once both one-off kills happened,
    so the caller can wait for them before it waits for the drain."""
    stop = threading.Event()
    one_offs_done = threading.Event()

    def hurt() -> None:
        started = time.monotonic()
        redis_done = api_done = False
        lifetime = size.kill_worker_every_s * random.uniform(0.5, 1.5)
        while not stop.wait(1.0):
            worker = stack.process("chalicelib.runtime.local_worker")
            if worker is not None and process_age_s(worker) > lifetime:
                stack.kill("chalicelib.runtime.local_worker")
                faults["worker_sigkill"] = faults.get("worker_sigkill", 0) + 1
                lifetime = size.kill_worker_every_s * random.uniform(0.5, 1.5)
            elapsed = time.monotonic() - started
            if not redis_done and elapsed > size.restart_redis_at_s:
                redis_done = stack.kill("redis-server")
                faults["redis_restart_empty"] = int(redis_done)
            elif redis_done and not api_done and elapsed > size.kill_api_at_s:
                api_done = stack.kill("chalice local")
                faults["api_sigkill"] = int(api_done)
            if redis_done and api_done and faults.get("worker_sigkill", 0) >= 1:
                one_offs_done.set()

    thread = threading.Thread(target=hurt, name="chaos", daemon=True)
    thread.start()
    try:
        yield one_offs_done
    finally:
        stop.set()
        thread.join()


def build_backlog(stack: Stack, conversation: Conversation, count: int) -> None:
    """The worker stalls (SIGSTOP) while one user sends `count` messages; then it resumes."""
    stopped = stack.kill("chalicelib.runtime.local_worker", signal.SIGSTOP)
    try:
        for index in range(count):
            send_async(stack, conversation, index)
    finally:
        if stopped:
            stack.kill("chalicelib.runtime.local_worker", signal.SIGCONT)


def transcript(stack: Stack, conversation: Conversation) -> list[str]:
    """The user messages of the conversation's session, oldest first."""
    if conversation.session_id is None:
        return []
    messages = _messages(stack, conversation)
    return [message["text"] for message in messages if message["role"] == "user"]


def _messages(stack: Stack, conversation: Conversation) -> list[dict[str, Any]]:
    """The whole transcript. The agent route pages it (50 a page unless ?limit=, up to 200): every
    page is read, or a long session looks cut short (a 100-message backlog's first page ends at its
    48th user message: 2 turns of 20 plus their replies, then 8)."""
    if conversation.binding is not None:
        binding_id, token = conversation.binding
        response = stack.call("GET", f"/v1/webhooks/webchat/{binding_id}/messages", token,
                              headers={"X-Visitor-Token": conversation.visitor_token or ""})
        assert response.status_code == 200, response.text
        webchat: list[dict[str, Any]] = response.json()["messages"]
        return webchat
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = f"?limit=200{f'&cursor={cursor}' if cursor else ''}"
        response = stack.call("GET", f"/v1/agents/{AGENT}/sessions/{conversation.session_id}/messages{query}",
                              conversation.tenant_key)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["messages"]
        cursor = body.get("next_cursor")
        if not cursor:
            return found


def wait_for_drain(stack: Stack, conversations: list[Conversation], timeout_s: float, report: Report) -> None:
    """Until every accepted message is in a transcript; replays the DLQ once if progress stops."""
    deadline, last_progress, last_count = time.monotonic() + timeout_s, time.monotonic(), -1
    wanted = {sent.text for conversation in conversations for sent in conversation.sent if sent.accepted}
    while time.monotonic() < deadline:
        seen = {text for conversation in conversations for text in transcript(stack, conversation)}
        if wanted <= seen:
            return
        if len(seen) != last_count:
            last_count, last_progress = len(seen), time.monotonic()
        elif time.monotonic() - last_progress > 3 * VISIBILITY_TIMEOUT_S and not report.replayed:
            replayed = stack.call("POST", "/v1/dead-letters/replay", stack.admin_key)
            report.replayed = int(replayed.json().get("replayed", 0)) or -1
        time.sleep(2)


def check(stack: Stack, conversations: list[Conversation], report: Report, backlog: Conversation | None) -> None:
    """Fill the report from the transcripts and turn records (it never raises on a finding)."""
    all_turn_ids: list[str] = []
    for conversation in conversations:
        said = transcript(stack, conversation)
        accepted = [sent.text for sent in conversation.sent if sent.accepted]
        report.accepted += len(accepted)
        report.lost += [text for text in accepted if text not in said]
        report.duplicated += sorted({text for text in said if said.count(text) > 1})
        if said != sorted(said):  # texts carry (index, attempt): sorted is the order they were sent
            report.out_of_order.append(conversation.user)
        if conversation.session_id is None or conversation.binding is not None:
            continue  # webchat turn records need the tenant key's agent route; the transcript suffices
        records = _turn_records(stack, conversation)
        all_turn_ids += [record["turn_id"] for record in records]
        messages = _messages(stack, conversation)
        agent_replies = [message for message in messages if message["role"] == "agent"]
        answered = sum(len(record["message"].split("\n")) for record in records)
        if len(agent_replies) != len(records) or answered != len(said) or not all(r["reply"] for r in records):
            report.bad_turns.append(conversation.user)
        report.turns += len(records)
        report.largest_turn = max([report.largest_turn, *(len(r["message"].split("\n")) for r in records)])
        if conversation is backlog:
            report.backlog_turns = len(records)
    report.repeated_turn_ids = sorted({turn_id for turn_id in all_turn_ids if all_turn_ids.count(turn_id) > 1})
    report.statuses_5xx = list(stack.statuses_5xx)


def _turn_records(stack: Stack, conversation: Conversation) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = f"?limit=100{f'&cursor={cursor}' if cursor else ''}"
        response = stack.call("GET", f"/v1/agents/{AGENT}/sessions/{conversation.session_id}/turns{query}",
                              conversation.tenant_key)
        assert response.status_code == 200, response.text
        body = response.json()
        records += body["turns"]
        cursor = body.get("next_cursor")
        if not cursor:
            return records


def run(stack: Stack, size: Size) -> Report:
    """The whole scenario; returns what was found (the caller asserts or prints)."""
    stack.slow_down_redelivery()
    tenants = [new_tenant(stack, f"chaos-{index}") for index in range(max(1, -(-size.users // USERS_PER_TENANT)))]
    users = [Conversation(tenant_key=tenants[index % len(tenants)], user=f"user{index:03d}")
             for index in range(size.users)]
    visitors = _visitors(stack, tenants[0], size.visitors)
    backlog = Conversation(tenant_key=tenants[-1], user="backlog")
    report = Report()
    started = time.monotonic()
    build_backlog(stack, backlog, size.backlog)
    with chaos(stack, size, report.faults) as one_offs_done:
        threads = [threading.Thread(target=run_users, args=(stack, users, size.messages, send_async)),
                   threading.Thread(target=run_users, args=(stack, visitors, size.visitor_messages, send_webchat))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report.send_s = time.monotonic() - started
        # The API and Redis kills land after the last send on a fast box; what they broke must drain too.
        one_offs_done.wait(timeout=size.kill_api_at_s + 60.0)
        everyone = [*users, *visitors, backlog]
        wait_for_drain(stack, everyone, size.drain_timeout_s, report)
    report.drain_s = time.monotonic() - started - report.send_s
    check(stack, everyone, report, backlog)
    return report


def _visitors(stack: Stack, tenant_key: str, count: int) -> list[Conversation]:
    token = "chaos-webchat-token"
    bound = stack.call("POST", f"/v1/agents/{AGENT}/channels", tenant_key,
                       json={"channel": "webchat", "secrets": {"token": token}})
    assert bound.status_code == 201, bound.text
    binding_id = bound.json()["binding_id"]
    return [Conversation(tenant_key=tenant_key, user=f"visitor{index:02d}", binding=(binding_id, token))
            for index in range(count)]


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
