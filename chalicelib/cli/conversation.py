"""Talk to a running agent (`ruche chat`) and explain its replies from the turn records (`ruche explain`)."""

from __future__ import annotations

import secrets
import sys
import urllib.parse
from typing import Any

import click

from chalicelib.cli.authoring import agent_path
from chalicelib.cli.client import ApiClient, ApiError
from chalicelib.cli.common import CliFailure, ServerFlags, server_options
from chalicelib.cli.trace import format_record, outcome_line, record_from_json
from chalicelib.domain.channel import ChannelName
from chalicelib.domain.turn import Outcome, TurnRecord

QUIT = {"/quit", "/exit", "/q"}
CHANNELS = click.Choice([name.value for name in ChannelName])


@click.command(short_help="Chat with an agent in the terminal.")
@click.argument("agent_id", metavar="ID")
@click.option("--user", "user_id", metavar="USER", help="The channel user id to chat as [default: a new one].")
@click.option(
    "--channel",
    default="api",
    show_default=True,
    type=CHANNELS,
    help="The channel whose config shapes the replies.",
)
@click.option("--session", "session_id", metavar="SESSION_ID", help="Continue an existing session.")
@server_options
def chat(
    *,
    agent_id: str,
    user_id: str | None,
    channel: str,
    session_id: str | None,
    server: ServerFlags,
) -> None:
    """Chat with agent ID in the terminal (POST /v1/agents/ID/turns).

    Each reply is followed by one line: rules applied, scenario and step, regeneration attempts,
    fallback, LLM calls. End with /quit or Ctrl-D.
    """
    if session_id and not user_id:
        raise click.UsageError("--session needs --user: a session belongs to one user (see the line that "
                               "ended that chat)")
    client = ApiClient(server.resolve())
    user = user_id or f"cli-{secrets.token_hex(4)}"
    stdin = sys.stdin
    click.echo(f"chatting with {agent_id} as {user} on {channel} (/quit to end)")
    while True:
        click.echo("you> ", nl=False)
        line = stdin.readline()
        if not line:
            click.echo()
            break
        message = line.strip()
        if not message:
            continue
        if message in QUIT:
            break
        body = {
            "user_id": user,
            "channel": channel,
            "message": message,
            **({"session_id": session_id} if session_id else {}),
        }
        try:
            answer = client.post(f"{agent_path(agent_id)}/turns", body)
        except ApiError as exc:
            if exc.status == 404:
                raise CliFailure(
                    f"{exc.api_message}: agent {agent_id!r}" + (f" or session {session_id!r}" if session_id else "")
                ) from None
            raise
        if session_id is None:
            session_id = str(answer["session_id"])
        reply = answer.get("reply")
        click.echo(f"agent> {reply}" if reply is not None else "agent> (silent: a human has the conversation)")
        click.secho(f"  {outcome_line(Outcome.model_validate(answer.get('outcome') or {}))}", dim=True)
    if session_id:
        click.echo(f"session {session_id}: `ruche explain {session_id} --agent {agent_id}` shows why; "
                   f"`ruche chat {agent_id} --user {user} --session {session_id}` goes on")


@click.command(short_help="Explain a reply from its turn record.")
@click.argument("session_id")
@click.argument("turn_id", required=False)
@click.option("--agent", "agent_id", metavar="ID",
              help="The agent the session belongs to [default: found among the tenant's agents].")
@click.option("--all", "show_all", is_flag=True, help="Explain every turn of the session, not only the last.")
@server_options
def explain(
    *, session_id: str, turn_id: str | None, agent_id: str | None, show_all: bool, server: ServerFlags
) -> None:
    """Explain a reply: the turn record of TURN_ID (default: the session's last turn) as a trace.

    Shows the rules retrieved and selected with scores and reasons, the scenario transition, the
    fields extracted (PII masked), tool calls, every generation attempt with its violations, the
    fallback decision and timings.
    """
    client = ApiClient(server.resolve())
    if agent_id is None:
        agent_id = _agent_of_session(client, session_id)
    records = session_records(client, agent_id, session_id)
    if turn_id is not None:
        chosen = [record for record in records if record.turn_id == turn_id]
        if not chosen:
            raise CliFailure(
                f"session {session_id!r} has no turn {turn_id!r} "
                f"({len(records)} turns: ruche explain {session_id} --agent {agent_id} --all)"
            )
    elif not records:
        raise CliFailure(f"session {session_id!r} has no turns yet")
    else:
        chosen = records if show_all else records[-1:]
    click.echo("\n\n".join(format_record(record) for record in chosen))


def _agent_of_session(client: ApiClient, session_id: str) -> str:
    """The agent whose session this is: the API reads sessions under their agent, so ask each one."""
    cursor: str | None = None
    while True:
        page: dict[str, Any] = client.get("/v1/agents", cursor=cursor) or {}
        for agent in page.get("agents") or []:
            try:
                client.get(f"{agent_path(agent['agent_id'])}/sessions/{urllib.parse.quote(session_id, safe='')}/turns",
                           limit="1")
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            return str(agent["agent_id"])
        cursor = page.get("next_cursor")
        if not cursor:
            raise CliFailure(f"session {session_id!r} not found in any agent of this tenant")


def session_records(client: ApiClient, agent_id: str, session_id: str) -> list[TurnRecord]:
    """Every turn record of a session, oldest first (follows next_cursor). Raises CliFailure."""
    path = f"{agent_path(agent_id)}/sessions/{urllib.parse.quote(session_id, safe='')}/turns"
    records: list[TurnRecord] = []
    cursor: str | None = None
    while True:
        try:
            page: dict[str, Any] = client.get(path, cursor=cursor) or {}
        except ApiError as exc:
            if exc.status == 404:
                raise CliFailure(f"session {session_id!r} of agent {agent_id!r} not found ({exc.code})") from None
            raise
        records += [record_from_json(item) for item in page.get("turns") or []]
        cursor = page.get("next_cursor")
        if not cursor:
            return records
