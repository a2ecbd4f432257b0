// Agents: the list with each one's current version; one agent's version history and rollback.

import {all, call, enc} from "./api.js";
import {h, message, replace, table, when} from "./dom.js";
import {guard, say} from "./status.js";

export async function showAgents(view, agentId) {
  const agents = await all("agents?limit=200", "agents");
  if (!agents.length) {
    replace(view, h("h1", {}, "Agents"), message("info",
      "This tenant has no agents yet. Publish one with PUT /v1/agents/{agent_id} " +
      "(or `ruche push bundle.yaml --agent ID`), then come back here."));
    return;
  }
  const rows = agents.map(agent => [
    h("a", {href: `#/agents/${enc(agent.agent_id)}`}, agent.agent_id),
    `v${agent.version}`,
    h("span", {class: "links"},
      h("a", {href: `#/sessions/${enc(agent.agent_id)}`}, "sessions"),
      h("a", {href: `#/try/${enc(agent.agent_id)}`}, "try it")),
  ]);
  const history = h("section", {id: "versions"});
  replace(view, h("h1", {}, "Agents"), table(["agent", "current version", ""], rows, {id: "agents"}), history);
  if (agentId) await showVersions(history, agentId);
}

async function showVersions(section, agentId) {
  const versions = await all(`agents/${enc(agentId)}/versions?limit=200`, "versions");
  const current = Math.max(...versions.map(v => v.version));
  const rows = versions.slice().sort((a, b) => b.version - a.version).map(v => [
    `v${v.version}`, when(v.published_at), String(v.rules), String(v.scenarios),
    v.version === current ? h("span", {class: "current"}, "current") : rollbackButton(section, agentId, v.version),
  ]);
  replace(section, h("h2", {}, `Versions of ${agentId}`),
    table(["version", "published", "rules", "scenarios", ""], rows, {id: "version-table"}));
}

function rollbackButton(section, agentId, version) {
  const cell = h("span", {class: "rollback"});
  const ask = h("button", {type: "button", "data-version": version, onclick: guard(() => {
    replace(cell, h("span", {class: "confirm"},
      `Republish v${version} of ${agentId} as its newest version? `,
      h("button", {type: "button", class: "danger", onclick: guard(() => rollback(section, agentId, version))},
        "Confirm rollback"),
      h("button", {type: "button", onclick: () => replace(cell, ask)}, "Cancel")));
  })}, `Roll back to v${version}`);
  return replace(cell, ask);
}

async function rollback(section, agentId, version) {
  const answer = await call(`agents/${enc(agentId)}/rollback`, {method: "POST", body: {version}});
  say("info", `${agentId}: v${version} republished as v${answer.version}.`);
  const view = section.parentElement;
  await showAgents(view, agentId);
}
