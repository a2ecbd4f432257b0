// The console shell: sign-in, navigation between views (#/agents, #/sessions/<agent>, ...), and the
// one place where errors become messages, so no view can leave a blank page or an uncaught error.

import {ApiError, call, key} from "./api.js";
import {message, replace} from "./dom.js";
import {onFailure, say} from "./status.js";
import {showAgents} from "./agents.js";
import {showSessions, showSession} from "./sessions.js";
import {showNumbers} from "./numbers.js";
import {showTry} from "./tryit.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signOut = document.getElementById("sign-out");

const ROUTES = {
  agents: ([agent]) => showAgents(view, agent),
  sessions: ([agent, session]) => (session ? showSession(view, agent, session) : showSessions(view, agent)),
  numbers: () => showNumbers(view),
  try: ([agent]) => showTry(view, agent),
};

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return {name: ROUTES[name] ? name : "agents", args: rest.filter(Boolean)};
}

function signIn(reason) {
  key.clear();
  nav.hidden = signOut.hidden = true;
  replace(view, document.getElementById("login-template").content.cloneNode(true));
  if (reason) say("error", reason);
  const form = document.getElementById("login-form");
  form.addEventListener("submit", event => {
    event.preventDefault();
    const candidate = form.elements.key.value.trim();
    tryKey(candidate).catch(failed);
  });
}

async function tryKey(candidate) {
  say("info", "Checking the key…");
  await call("agents?limit=1", {apiKey: candidate});
  key.set(candidate);
  say("", "");
  await render();
}

async function render() {
  if (!key.get()) { signIn(); return; }
  nav.hidden = signOut.hidden = false;
  const {name, args} = route();
  for (const link of nav.querySelectorAll("a")) link.classList.toggle("active", link.dataset.view === name);
  replace(view, message("info", "Loading…"));
  await ROUTES[name](args);
}

/** What a failure looks like to the person in front of the page. */
function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    const wasSignedIn = Boolean(key.get());
    signIn(wasSignedIn
      ? "Your key is no longer accepted: it was revoked or has expired. Sign in with a current tenant key."
      : "This key was not accepted: it is unknown, revoked or expired. Check it and try again.");
    return;
  }
  const text = error instanceof ApiError ? error.message : `Something went wrong in the console: ${error.message}`;
  say("error", text);
  if (view.textContent.trim() === "Loading…") replace(view, message("error", text));
}

onFailure(failed);
signOut.addEventListener("click", () => { key.clear(); say("", ""); location.hash = "#/agents"; signIn(); });
window.addEventListener("hashchange", () => { say("", ""); render().catch(failed); });
render().catch(failed);
