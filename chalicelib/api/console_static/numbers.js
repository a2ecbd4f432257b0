// Numbers: daily turns, tokens, fallback rate and regeneration rate for a date range (GET /v1/usage),
// and one agent's insights (GET /v1/agents/{id}/insights): top violated rules, the scenario funnel,
// turns that matched nothing.

import {ApiError, all, call, enc} from "./api.js";
import {h, message, percent, plural, replace, table, when} from "./dom.js";
import {dailyBars, rankBars} from "./charts.js";
import {guard} from "./status.js";

const DAY_MS = 86_400_000;

function isoDay(date) { return date.toISOString().slice(0, 10); }

function daysBetween(from, to) {
  const days = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS) {
    days.push(isoDay(new Date(t)));
  }
  return days;
}

export async function showNumbers(view) {
  const agents = await all("agents?limit=200", "agents");
  const today = new Date();
  const form = h("form", {id: "range", class: "filters"},
    h("label", {}, "From ", h("input", {type: "date", name: "from", value: isoDay(new Date(today - 6 * DAY_MS))})),
    h("label", {}, "To ", h("input", {type: "date", name: "to", value: isoDay(today)})),
    h("label", {}, "Agent ", h("select", {name: "agent"}, h("option", {value: ""}, "all agents"),
      agents.map((a, i) => h("option", {value: a.agent_id, selected: i === 0}, a.agent_id)))),
    h("button", {type: "submit"}, "Show"));
  const usage = h("section", {id: "usage"});
  const insights = h("section", {id: "insights"});
  replace(view, h("h1", {}, "Numbers"), form, usage, insights);
  if (!agents.length) {
    replace(usage, message("info", "This tenant has no agents yet: there is nothing to count."));
    return;
  }
  let latest = 0;  // a slow answer to an earlier "Show" must not overwrite a later one
  const load = () => {
    const from = form.elements.from.value, to = form.elements.to.value, agent = form.elements.agent.value;
    const mine = ++latest;
    const into = section => (...children) => { if (mine === latest) replace(section, ...children); };
    return Promise.all([showUsage(into(usage), from, to, agent), showInsights(into(insights), from, to, agent)]);
  };
  form.addEventListener("submit", event => { event.preventDefault(); guard(load)(); });
  await load();
}

async function showUsage(show, from, to, agentId) {
  show(message("info", "Loading usage…"));
  const params = new URLSearchParams({from, to});
  if (agentId) params.set("agent_id", agentId);
  const found = await optional(() => call(`usage?${params}`), show, "Usage figures");
  if (!found) return;
  const labels = daysBetween(from, to);
  const byDay = Object.fromEntries(labels.map(day => [day, {turns: 0, prompt_tokens: 0, completion_tokens: 0,
                                                            fallbacks: 0, regenerations: 0}]));
  for (const row of found.days) {
    const day = byDay[row.date];
    if (!day) continue;
    for (const name of Object.keys(day)) day[name] += row[name] || 0;
  }
  const days = labels.map(day => byDay[day]);
  const rate = (count, turns) => (turns ? count / turns : 0);
  const totals = found.totals;
  const whole = n => String(Math.round(n));
  const pct = n => `${Number(n.toFixed(1))} %`;
  const tokens = n => (n >= 10_000 ? `${(n / 1000).toFixed(0)}k` : whole(n));
  show(
    h("p", {class: "totals"}, [plural(totals.turns, "turn"), plural(totals.llm_calls, "LLM call"),
      plural(totals.prompt_tokens + totals.completion_tokens, "token"), plural(totals.fallbacks, "fallback"),
      plural(totals.regenerations, "regeneration"), plural(totals.handoffs, "handoff")].join(" · ") +
      ` (${from} to ${to})`),
    h("div", {class: "charts"},
      dailyBars({id: "chart-turns", title: "Turns per day (turns)", labels, format: whole, integer: true,
                 series: [{name: "turns", values: days.map(d => d.turns)}]}),
      dailyBars({id: "chart-tokens", title: "Tokens per day (tokens)", labels, format: tokens, integer: true,
                 series: [{name: "prompt", values: days.map(d => d.prompt_tokens)},
                          {name: "completion", className: "second", values: days.map(d => d.completion_tokens)}]}),
      dailyBars({id: "chart-fallback", title: "Fallback rate (% of turns)", labels, format: pct,
                 series: [{name: "fallback rate", className: "bad", values: days.map(d => 100 * rate(d.fallbacks, d.turns))}]}),
      dailyBars({id: "chart-regeneration", title: "Regeneration rate (regenerations per 100 turns)", labels,
                 format: pct,
                 series: [{name: "regeneration rate", className: "warn",
                           values: days.map(d => 100 * rate(d.regenerations, d.turns))}]})));
}

async function showInsights(show, from, to, agentId) {
  if (!agentId) {
    show(message("info", "Choose one agent to see its insights (violated rules, scenario funnel)."));
    return;
  }
  show(message("info", "Loading insights…"));
  const found = await optional(() => call(`agents/${enc(agentId)}/insights?from=${from}&to=${to}`), show,
                               "Insights");
  if (!found) return;
  const violated = found.violations.slice().sort((a, b) => b.count - a.count).slice(0, 10);
  const applied = found.rules_applied.slice().sort((a, b) => b.count - a.count).slice(0, 10);
  show(h("h2", {}, `Insights for ${agentId}`),
    h("p", {class: "totals"}, `${plural(found.turns, "turn")} · fallback rate ${percent(found.fallback_rate)} · ` +
      `regeneration rate ${percent(found.regeneration_rate)}`),
    h("div", {class: "charts"},
      rankBars({id: "chart-violations", title: "Top violated rules (drafts that broke them)", unit: "draft",
                items: violated.map(v => ({label: v.rule_id, value: v.count}))}),
      rankBars({id: "chart-applied", title: "Rules applied (turns)", unit: "turn",
                items: applied.map(v => ({label: v.rule_id, value: v.count}))})),
    h("h3", {}, "Scenario funnel"),
    found.scenario_funnel.length
      ? found.scenario_funnel.map(funnel => h("div", {class: "funnel"}, h("h4", {}, funnel.scenario_id),
        table(["step", "entered", "completed", "left"],
              funnel.steps.map(step => [step.step_id, String(step.entered), String(step.completed), String(step.left)]))))
      : message("info", "No scenario was entered in this period."),
    h("h3", {}, `Turns that matched no rule and no scenario: ${found.unmatched.turns}`),
    found.unmatched.samples.length
      ? table(["when", "message (PII masked)", "session"], found.unmatched.samples.map(sample => [
        when(sample.at), sample.message,
        h("a", {href: `#/sessions/${enc(agentId)}/${enc(sample.session_id)}`}, sample.session_id)]))
      : null);
}

/** The answer, or null after showing why (an API without that endpoint, a bad range). */
async function optional(load, show, what) {
  try {
    return await load();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    // chalice local answers an unknown route 403: an API without the usage routes.
    const reason = error instanceof ApiError && error.status === 403
      ? `${what} are not available from this API (HTTP 403).` : `${what}: ${error.message}`;
    show(message("error", reason));
    return null;
  }
}
