"""The fallback: the first renderable FALLBACK template in reach, else the built-in safe reply."""

from __future__ import annotations

from chalicelib.domain.template import Template, TemplateMode
from chalicelib.focal.enforcement.fallback import SAFE_REPLY, choose_fallback
from tests.focal.enforcement.doubles import a_plan
from tests.focal.factories import a_template


def fallback(template_id: str, text: str) -> Template:
    return a_template(template_id, text=text, mode=TemplateMode.FALLBACK)


def same(text: str) -> str:
    return text


def test_the_first_template_in_order_is_rendered_with_the_plan_variables() -> None:
    plan = a_plan(fallbacks=[fallback("step_fb", "Sorry {{ first_name }}, a colleague will call."),
                             fallback("global_fb", "Sorry, a colleague will call.")],
                  variables={"first_name": "Ada"})
    template, text = choose_fallback(plan, same)
    assert template is not None and template.id == "step_fb"
    assert text == "Sorry Ada, a colleague will call."


def test_a_template_with_a_placeholder_lacking_a_value_is_skipped() -> None:
    plan = a_plan(fallbacks=[fallback("needs_order", "Order {{ tools.lookup.order_id }} is noted."),
                             fallback("plain", "We will get back to you.")],
                  variables={"tools": {}})
    template, text = choose_fallback(plan, same)
    assert template is not None and template.id == "plain"
    assert "{{" not in text


def test_without_a_usable_template_the_built_in_safe_reply_is_formatted_and_sent() -> None:
    plan = a_plan(fallbacks=[fallback("needs_name", "Hi {{ first_name }}")], variables={})
    template, text = choose_fallback(plan, str.upper)
    assert template is None
    assert text == SAFE_REPLY.upper()


def test_the_template_text_is_formatted_for_the_channel() -> None:
    plan = a_plan(fallbacks=[fallback("fb", "**Sorry**, later.")])
    _, text = choose_fallback(plan, lambda reply: reply.replace("**", ""))
    assert text == "Sorry, later."


def test_a_template_the_caller_refuses_or_that_renders_empty_is_skipped() -> None:
    plan = a_plan(fallbacks=[fallback("refused", "We refund $500."), fallback("blank", "{{ note }}"),
                             fallback("ok", "A colleague will follow up.")],
                  variables={"note": ""})
    template, text = choose_fallback(plan, same, accept=lambda reply: "$" not in reply)
    assert template is not None and template.id == "ok"
    assert text == "A colleague will follow up."
