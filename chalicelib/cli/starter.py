"""`ruche init NAME`: a starter bundle and a conversation test that passes, to edit from there."""

from __future__ import annotations

from pathlib import Path

import click

from chalicelib.cli.common import USAGE_ERROR, CliFailure
from chalicelib.domain.ids import is_valid_id

BUNDLE = """\
# {name}: a starter agent written by `ruche init`. Edit it, then:
#   ruche validate {name}.yaml
#   ruche test tests/{name}
#   ruche push {name}.yaml --agent {name}
# It answers without a model too (llm.provider: offline): every field says how to ask for it
# (`ask`) and every answer is a template, so the replies are in your words.

agent:
  name: {title}
  description: Answers questions about opening hours and takes callback requests.
  config:
    response:
      max_length: 600

fields:
  - name: caller_name
    type: string
    description: The name of the person to call back
    ask: Who should we ask for when we call?
    pii: true
  - name: phone
    type: phone
    description: The number to call back
    ask: Which number should we call you on?
    pii: true

templates:
  - id: hours_reply
    mode: exclusive
    text: We are open Monday to Friday, 9am to 5pm.
  - id: callback_booked
    mode: exclusive
    scope: step
    scenario: callback
    step: done
    text: Thanks {{{{ caller_name }}}}, we will call you back within one business day.
  - id: safe_reply
    mode: fallback
    # Also the reply when nothing applies: {{{{ topics }}}} lists what the agent helps with.
    text: I can help with {{{{ topics }}}}. For anything else, please email hello@example.com.

rules:
  - id: opening_hours
    name: Opening hours
    condition: the user asks when you are open
    examples: [when are you open, what are your opening hours, are you open on friday]
    action: give the opening hours
    templates: [hours_reply]
  - id: no_promises
    name: No promises
    condition: any reply
    action: never guarantee anything
    hard_constraint: true
    expression: not contains(reply, "guarantee")

scenarios:
  - id: callback
    name: Callback requests
    condition: the user wants someone to call them back
    examples: [can someone call me back, I would like a callback, please phone me]
    entry_step: details
    steps:
      - id: details
        name: Contact details
        instruction: Ask for the name and the number to call.
        required_fields: [caller_name, phone]
        transitions:
          - {{to: done, expression: phone != ""}}
      - id: done
        name: Done
        terminal: true
"""

TEST = """\
# Conversation tests for {name}: `ruche test tests/{name}` (in-process, offline, no server needed).
bundle: ../../{name}.yaml
agent: {name}

conversations:
  - name: opening hours are answered with the template
    turns:
      - user: When are you open?
        expect:
          rules: [opening_hours]
          reply: {{contains: ["Monday to Friday, 9am to 5pm"]}}

  - name: a callback request collects a name and a number, then confirms
    turns:
      - user: Can someone call me back?
        expect:
          scenario: callback/details
          reply: {{contains: ["Who should we ask for when we call?"]}}
      - user: Ana Lopez
        expect:
          reply: {{contains: ["Which number should we call you on?"]}}
      - user: "+1 555 010 4477"
        expect:
          scenario: callback/done
          reply: {{contains: ["Thanks Ana Lopez, we will call you back"]}}

  - name: anything else is answered with what the agent helps with
    turns:
      - user: Do you sell gift cards?
        expect:
          scenario: none
          reply: {{contains: ["I can help with callback requests, opening hours"]}}
"""


@click.command(short_help="Write a starter bundle and a passing conversation test.")
@click.argument("name")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to write NAME.yaml and tests/NAME/.")
def init(name: str, folder: Path) -> None:
    """Write NAME.yaml (a small agent: a rule, a scenario, templates, a hard constraint) and
    tests/NAME/starter.yaml (conversation tests that pass offline). Never overwrites a file."""
    if not is_valid_id(name):
        raise CliFailure(f"{name!r} is not a valid agent id (letters, digits, _ . -; at most 64)", USAGE_ERROR)
    bundle, test = folder / f"{name}.yaml", folder / "tests" / name / "starter.yaml"
    existing = [str(path) for path in (bundle, test) if path.exists()]
    if existing:
        raise CliFailure(f"not overwriting {', '.join(existing)}", USAGE_ERROR)
    title = name.replace("-", " ").replace("_", " ").strip().capitalize()
    test.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_text(BUNDLE.format(name=name, title=title), encoding="utf-8")
    test.write_text(TEST.format(name=name), encoding="utf-8")
    click.echo(f"wrote {bundle} and {test}\nnext: ruche test {test.parent}")
