// Sessions: an agent's sessions newest first (filters: fallback, handoff, scenario; "more" pages on),
// and one session: its transcript from the turn records (PII masked as they keep it), each reply
// with its explanation.

import {all, call, enc} from "./api.js";
import {badge, h, message, replace, when} from "./dom.js";
import {explanation, replyBadges} from "./explain.js";
import {guard} from "./status.js";

const PAGE = 20;

export async function showSessions(view, agentId) {
  const agents = await all("agents?limit=200", "agents");
  if (!agentId && !agents.length) {
    replace(view, h("h1", {}, "Sessions"), message("info", "This tenant has no agents yet, so no sessions either."));
    return;
  }
  const chosen = agentId || agents[0].agent_id;
  const picker = h("select", {id: "session-agent", "aria-label": "agent", onchange: event => {
    location.hash = `#/sessions/${enc(event.target.value)}`;
  }}, agents.map(a => h("option", {value: a.agent_id, selected: a.agent_id === chosen}, a.agent_id)));
  if (!agents.some(a => a.agent_id === chosen)) picker.append(h("option", {value: chosen, selected: true}, chosen));
  const scenarios = agents.some(a => a.agent_id === chosen)
    ? ((await call(`agents/${enc(chosen)}`)).scenarios || []).map(scenario => scenario.id) : [];
  const filters = h("form", {id: "session-filters", class: "filters"},
    choice("fallback", "Fallback"), choice("handoff", "Handoff"),
    h("label", {}, "Scenario ", h("input", {name: "scenario", size: 14, placeholder: "scenario id",
                                            list: "scenario-ids", autocomplete: "off"})),
    h("datalist", {id: "scenario-ids"}, scenarios.map(id => h("option", {value: id}))),
    h("button", {type: "submit"}, "Filter"));
  const list = h("section", {id: "session-list"});
  replace(view, h("h1", {}, "Sessions of ", picker), filters, list);
  const load = guard(() => listSessions(list, chosen, query(filters)));
  filters.addEventListener("submit", event => { event.preventDefault(); load(); });
  await listSessions(list, chosen, query(filters));
}

function choice(name, label) {
  return h("label", {}, `${label} `, h("select", {name},
    h("option", {value: ""}, "any"), h("option", {value: "true"}, "yes"), h("option", {value: "false"}, "no")));
}

function query(form) {
  const params = new URLSearchParams({limit: String(PAGE)});
  for (const name of ["fallback", "handoff", "scenario"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function listSessions(section, agentId, params, cursor, body) {
  if (cursor) params.set("cursor", cursor);
  // A new listing (other filters) supersedes one still loading: only the latest one's answer is shown,
  // however the answers race. Its "older sessions" pages belong to it.
  const asked = body ? section.asked : (section.asked = (section.asked || 0) + 1);
  const page = await call(`agents/${enc(agentId)}/sessions?${params}`);
  if (asked !== section.asked) return;
  const rows = page.sessions.map(row => h("tr", {},
    h("td", {}, h("a", {href: `#/sessions/${enc(agentId)}/${enc(row.session_id)}`}, row.session_id)),
    h("td", {}, when(row.started_at)), h("td", {}, when(row.last_turn_at)), h("td", {class: "num"}, row.turns),
    h("td", {}, row.fallbacks ? badge(`fallback ×${row.fallbacks}`, "warn") : "",
      row.handoff ? badge("handoff", "info") : ""),
    h("td", {}, row.scenario_id || ""), h("td", {}, `${row.channel} · ${row.user_id}`)));
  if (!body) {
    if (!rows.length) {
      const filtered = ["fallback", "handoff", "scenario"].some(name => params.has(name));
      replace(section, message("info", filtered ? "No session matches these filters."
        : "No sessions yet: send a message from “Try it” or through a channel."));
      return;
    }
    const headers = ["session", "started", "last turn", "turns", "", "scenario", "channel · user"];
    body = h("tbody", {});
    replace(section, h("table", {id: "sessions"}, h("thead", {}, h("tr", {}, headers.map(t => h("th", {}, t)))), body));
  }
  body.append(...rows);
  section.querySelector(".more")?.remove();
  if (page.next_cursor) {
    section.append(h("button", {type: "button", class: "more",
      onclick: guard(() => listSessions(section, agentId, params, page.next_cursor, body))}, "Older sessions"));
  }
}

export async function showSession(view, agentId, sessionId) {
  const [records, agents] = await Promise.all([
    all(`agents/${enc(agentId)}/sessions/${enc(sessionId)}/turns?limit=200`, "turns"),
    all("agents?limit=200", "agents"),
  ]);
  const agentState = agents.some(agent => agent.agent_id === agentId);
  const heading = [h("h1", {}, `Session ${sessionId}`),
    h("p", {class: "crumbs"}, h("a", {href: `#/sessions/${enc(agentId)}`}, `← sessions of ${agentId}`))];
  const notes = [];
  if (!agentState) {
    notes.push(message("warn", `The agent “${agentId}” has been deleted. This session's turn records are shown ` +
      "as they were kept; the rules and steps they name may no longer exist."));
  }
  if (!records.length) notes.push(message("info", "This session has no turn records (yet, or any more)."));
  replace(view, ...heading, ...notes, h("ol", {class: "transcript", id: "transcript"}, records.map(turnItem)));
}

export function turnItem(record, {open = false} = {}) {
  const user = h("div", {class: "msg user"}, h("span", {class: "who"}, "user"), record.message);
  if (record.kind === "silent") {  // handed over: a person has the conversation, the agent said nothing
    return h("li", {class: "turn", "data-turn": record.turn_id}, user,
      h("div", {class: "msg agent silent"}, "No reply: the session is handed over to a person."));
  }
  return h("li", {class: "turn", "data-turn": record.turn_id}, user,
    h("div", {class: "msg agent"}, h("span", {class: "who"}, `agent v${record.agent_version}`), record.reply,
      h("span", {class: "badges"}, replyBadges(record))),
    explanation(record, {open}));
}
