// Try it: send a message to an agent as `ruche chat` does (POST /v1/agents/{id}/turns, synchronous)
// and show the reply with its explanation, read back from the session's turn records.

import {all, call, enc} from "./api.js";
import {h, message, replace} from "./dom.js";
import {turnItem} from "./sessions.js";
import {guard, say} from "./status.js";

export async function showTry(view, agentId) {
  const agents = await all("agents?limit=200", "agents");
  if (!agents.length) {
    replace(view, h("h1", {}, "Try it"), message("info", "This tenant has no agents yet: publish one first."));
    return;
  }
  const chosen = agents.some(a => a.agent_id === agentId) ? agentId : agents[0].agent_id;
  const conversation = {sessionId: null};
  const log = h("ol", {class: "transcript", id: "try-log"});
  const where = h("p", {class: "crumbs", id: "try-session"});
  const form = h("form", {id: "try-form", class: "composer"},
    h("select", {name: "agent", "aria-label": "agent", onchange: () => restart()},
      agents.map(a => h("option", {value: a.agent_id, selected: a.agent_id === chosen}, `${a.agent_id} (v${a.version})`))),
    h("input", {name: "user", "aria-label": "user id", size: 12, value: `console-${Math.random().toString(36).slice(2, 8)}`}),
    h("input", {name: "message", "aria-label": "message", placeholder: "Type a message", autocomplete: "off", required: true}),
    h("button", {type: "submit"}, "Send"),
    h("button", {type: "button", onclick: () => restart()}, "New conversation"));

  function restart() {
    conversation.sessionId = null;
    log.replaceChildren();
    where.replaceChildren();
  }

  async function send() {
    const text = form.elements.message.value.trim();
    if (!text) return;
    const agent = form.elements.agent.value;
    const body = {user_id: form.elements.user.value.trim() || "console", channel: "api", message: text};
    if (conversation.sessionId) body.session_id = conversation.sessionId;
    const pending = h("li", {class: "turn pending"}, h("div", {class: "msg user"}, text));
    log.append(pending);
    form.elements.message.value = "";
    try {
      const answer = await call(`agents/${enc(agent)}/turns`, {method: "POST", body});
      conversation.sessionId = answer.session_id;
      replace(where, "Session ", h("a", {href: `#/sessions/${enc(agent)}/${enc(answer.session_id)}`}, answer.session_id));
      const records = await all(`agents/${enc(agent)}/sessions/${enc(answer.session_id)}/turns?limit=200`, "turns");
      const record = records.find(r => r.turn_id === answer.turn_id);
      pending.replaceWith(record ? turnItem(record, {open: true}) : h("li", {class: "turn"},
        h("div", {class: "msg user"}, text), h("div", {class: "msg agent"}, answer.reply)));
    } catch (error) {
      pending.remove();
      form.elements.message.value = text;
      throw error;
    }
  }

  form.addEventListener("submit", event => { event.preventDefault(); say("", ""); guard(send)(); });
  replace(view, h("h1", {}, "Try it"),
    h("p", {}, "Each message runs a real turn, as `ruche chat` does; the reply comes with its explanation."),
    form, where, log);
}
