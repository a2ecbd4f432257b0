"""`make run`'s local stack, end to end: start it as a user would, talk HTTP to it, Ctrl-C it."""

from __future__ import annotations

import hashlib
import shlex
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import LocalStack, descendants, is_running, launch, read_logs, start

pytestmark = pytest.mark.integration

DEMO_AGENTS = ("retail-returns", "telecom-support")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_answers_ok_without_a_key(local_stack: LocalStack) -> None:
    response = requests.get(f"{local_stack.api_url}/health", timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_openapi_document_is_served_without_a_key(local_stack: LocalStack) -> None:
    response = requests.get(f"{local_stack.api_url}/v1/openapi.json", timeout=10)

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/agents/{agent_id}/turns" in document["paths"]


def test_every_demo_agent_is_published_for_the_printed_tenant_key(local_stack: LocalStack) -> None:
    for agent_id in DEMO_AGENTS:
        response = requests.get(f"{local_stack.api_url}/v1/agents/{agent_id}",
                                headers=bearer(local_stack.tenant_key), timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["agent"]["name"]


def test_a_turn_with_the_printed_key_gets_a_reply_and_leaves_a_turn_record(local_stack: LocalStack) -> None:
    url = f"{local_stack.api_url}/v1/agents/retail-returns"
    turn = requests.post(f"{url}/turns", headers=bearer(local_stack.tenant_key), timeout=60, json={
        "user_id": "integration-user", "channel": "api", "message": "When are you open?"})

    assert turn.status_code == 200, f"{turn.text}\n{read_logs(local_stack.logs)}"
    body = turn.json()
    assert body["reply"]
    records = requests.get(f"{url}/sessions/{body['session_id']}/turns",
                           headers=bearer(local_stack.tenant_key), timeout=10)
    assert records.status_code == 200, records.text
    assert [record["turn_id"] for record in records.json()["turns"]] == [body["turn_id"]]


def test_the_printed_curl_for_each_demo_agent_runs_a_turn(local_stack: LocalStack) -> None:
    for agent_id in DEMO_AGENTS:
        lines = local_stack.output.splitlines()
        start_at = next(index for index, line in enumerate(lines) if f"/v1/agents/{agent_id}/turns" in line)
        command = " ".join(line.strip().rstrip("\\") for line in lines[start_at:start_at + 3])

        done = subprocess.run([*shlex.split(command), "--fail-with-body", "--max-time", "60"],
                              capture_output=True, text=True, check=False)

        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert '"reply"' in done.stdout


def test_a_request_without_a_key_is_refused(local_stack: LocalStack) -> None:
    response = requests.post(f"{local_stack.api_url}/v1/agents/retail-returns/turns", timeout=10,
                             json={"user_id": "u", "message": "hi"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_ctrl_c_stops_every_process_the_stack_started(tmp_path: Path) -> None:
    stack = start(tmp_path)
    children = descendants(stack.process.pid)
    assert len(children) >= 3, f"expected moto_server, redis-server and chalice local, got {children}"
    api_port = int(stack.api_url.rsplit(":", 1)[1])

    code = stack.interrupt()

    assert code == 0, stack.output
    assert [pid for pid in children if is_running(pid)] == []
    assert "stopped" in stack.output
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", api_port)) != 0, "chalice local still listens"


def test_a_taken_aws_port_is_reported_and_nothing_is_left_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = launch(tmp_path, RUCHE_LOCAL_AWS_PORT=str(port))

        code = stack.wait(timeout_s=120)

    assert code == 1, f"{stack.output}\n{read_logs(tmp_path)}"
    assert f"port {port} is taken" in stack.output
    assert "AWS_ENDPOINT_URL" in stack.output
    assert "stopped 0 processes" in stack.output


def test_the_banner_says_the_queue_worker_runs(local_stack: LocalStack) -> None:
    assert local_stack.banner_value("Worker") == "running:"
    assert (local_stack.logs / "worker.log").exists()


def test_the_returns_desk_refunds_a_delivered_order_only_after_the_customer_confirms(
        local_stack: LocalStack) -> None:
    url = f"{local_stack.api_url}/v1/agents/retail-returns"
    session_id: str | None = None
    answers = []
    # The email completes the order step; the turn that lands on the refund asks to confirm it and
    # registers the confirmation, so the next "yes" issues it (one yes, as the README shows).
    for message in ("Hi, I would like to return order NW-204513, the jacket arrived damaged",
                    "My order number is NW-204513 and my email is ana@example.com",
                    "yes please go ahead"):
        body = {"user_id": "refund-user", "message": message, **({"session_id": session_id} if session_id else {})}
        turn = requests.post(f"{url}/turns", headers=bearer(local_stack.tenant_key), json=body, timeout=60)
        assert turn.status_code == 200, f"{turn.text}\n{read_logs(local_stack.logs)}"
        answers.append(turn.json())
        session_id = answers[-1]["session_id"]

    reference = "RF-" + hashlib.sha256(b"NW-204513").hexdigest()[:8].upper()  # what the demo tool answers
    assert reference in answers[-1]["reply"]
    assert answers[-1]["outcome"]["scenario"] == {"id": "return_request", "step": "refund_issued"}
    records = requests.get(f"{url}/sessions/{session_id}/turns", headers=bearer(local_stack.tenant_key),
                           timeout=10).json()["turns"]
    refund_calls = [call["status"] for record in records for call in record["tool_calls"]
                    if call["tool_id"] == "issue_refund"]
    assert refund_calls == ["awaiting_confirmation", "ok"]
