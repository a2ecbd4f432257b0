// Why a reply: one turn record laid out for reading. Rules with scores, the scenario step before and
// after, fields, tool calls, every generation attempt with its violations, the fallback and its
// reason, LLM calls, tokens and timings (the same facts `ruche explain` prints).

import {badge, h, table} from "./dom.js";

export function replyBadges(record) {
  const outcome = record.outcome || {};
  return [
    outcome.regeneration_attempts ? badge(`regenerated ×${outcome.regeneration_attempts}`, "warn") : null,
    outcome.fallback_used ? badge("fallback", "bad") : null,
    outcome.handoff ? badge("handoff", "info") : null,
    record.kind === "refused" ? badge("over quota", "bad") : null,
  ];
}

export function explanation(record, {open = false} = {}) {
  return h("details", {class: "why", open}, h("summary", {}, "Why this reply"),
    h("div", {class: "parts"},
      section("Rules", rules(record)),
      section("Scenario", scenario(record)),
      section("Generation attempts", attempts(record)),
      section("Fallback", fallback(record)),
      section("Fields", fields(record)),
      section("Tool calls", tools(record)),
      section("LLM and timings", costs(record))));
}

function section(title, body) {
  return h("section", {class: `part part-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`}, h("h3", {}, title), body);
}

function none(text) {
  return h("p", {class: "none"}, text);
}

function rules(record) {
  const traced = record.retrieved || [];
  if (!traced.length) return none("No rule was retrieved for this message.");
  const rows = traced.slice().sort((a, b) => Number(b.selected) - Number(a.selected) || b.score - a.score)
    .map(rule => [rule.rule_id, rule.score.toFixed(3), rule.selected ? badge("applied", "good") : "not applied",
                  rule.reason]);
  return table(["rule", "score", "", "why"], rows, {class: "rules"});
}

function scenario(record) {
  const trace = record.scenario_trace;
  if (!trace || trace.action === "none") return none("No scenario was involved.");
  return h("dl", {},
    h("dt", {}, "action"), h("dd", {}, trace.action),
    h("dt", {}, "scenario"), h("dd", {}, trace.scenario_id || "—"),
    h("dt", {}, "step"), h("dd", {}, `${trace.from_step || "(none)"} → ${trace.to_step || "(none)"}`),
    trace.path.length ? [h("dt", {}, "path"), h("dd", {}, trace.path.join(" → "))] : null,
    trace.missing_fields.length ? [h("dt", {}, "still missing"), h("dd", {}, trace.missing_fields.join(", "))] : null);
}

function fields(record) {
  const extracted = Object.entries(record.fields_extracted || {});
  const rejected = Object.entries(record.fields_rejected || {});
  if (!extracted.length && !rejected.length) return none("No field value was extracted.");
  return table(["field", "result"], [
    ...extracted.map(([name, value]) => [name, h("span", {class: "ok"}, `stored: ${value}`)]),
    ...rejected.map(([name, reason]) => [name, h("span", {class: "rejected"}, `rejected: ${reason}`)]),
  ]);
}

function tools(record) {
  const calls = record.tool_calls || [];
  if (!calls.length) return none("No tool was called.");
  return table(["tool", "status", "attempts", "latency", "error"], calls.map(call => [
    call.tool_id, badge(call.status, call.status === "ok" ? "good" : "warn"), String(call.attempts),
    `${call.latency_ms} ms`, call.error || ""]));
}

function attempts(record) {
  const drafts = record.attempts || [];
  if (!drafts.length) return none("No draft was generated (an exclusive template, or a handoff).");
  return h("ol", {class: "attempts"}, drafts.map((draft, index) => h("li", {class: "attempt"},
    h("div", {class: "draft"}, h("span", {class: "who"}, `draft ${index + 1}`), draft.reply),
    draft.violations.length
      ? h("ul", {class: "violations"}, draft.violations.map(v =>
        h("li", {class: "violation"}, h("strong", {}, v.rule_id), ` (${v.lane}): ${v.message}`)))
      : h("p", {class: "ok"}, "complies with every hard constraint"),
    draft.not_applicable.length
      ? h("p", {class: "none"}, `not applicable (no value this turn): ${draft.not_applicable.join(", ")}`) : null)));
}

function fallback(record) {
  if (!record.outcome.fallback_used) return none("The fallback did not fire.");
  return h("p", {class: "fallback"},
    `The fallback fired: ${record.fallback_reason || "no reason recorded"}. `,
    record.fallback_template_id ? `Template “${record.fallback_template_id}”.` : "The built-in safe reply was sent.");
}

function costs(record) {
  const timings = Object.entries(record.timings_ms || {});
  return h("div", {},
    h("p", {}, `${record.llm_calls} LLM call${record.llm_calls === 1 ? "" : "s"}, ` +
      `${record.prompt_tokens} prompt + ${record.completion_tokens} completion tokens.`),
    timings.length ? table(["phase", "ms"], timings.map(([phase, ms]) => [phase, ms.toFixed(1)]), {class: "timings"})
      : null);
}
