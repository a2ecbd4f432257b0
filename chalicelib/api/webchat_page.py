"""A small web page for trying an agent in a browser through a webchat binding.

It uses exactly the two public webchat calls (API.md): POST a message with the binding token,
and poll GET .../messages with the visitor token it was given. The binding token is public by
design (it only names the binding), so embedding it in the page reveals nothing. URLs are
relative to the page, so the page works under an API Gateway stage prefix too. Messages are
rendered with textContent, never as HTML. Its headers (api/page_security.py) allow only its own
inline script and style, fetches to its own origin, and framing by the binding's `embed_origins`.
"""

from __future__ import annotations

import json

from chalicelib.api.page_security import security_headers
from chalicelib.runtime.ingest import binding_for
from chalicelib.runtime.services import Services

POLL_INTERVAL_MS = 1000
EMBED_ORIGINS = "embed_origins"  # binding config: the origins whose pages may frame this one


def render(svc: Services, binding_id: str) -> tuple[str, dict[str, str | list[str]]]:
    """The page and its security headers; framing allowed to the binding's `embed_origins`.

    Raises NotFound.
    """
    binding = binding_for(svc, "webchat", binding_id)
    html = page(svc, binding_id)
    origins = binding.config.get(EMBED_ORIGINS)
    headers: dict[str, str | list[str]] = {**security_headers(html, origins if isinstance(origins, list) else ())}
    return html, headers


def page(svc: Services, binding_id: str) -> str:
    """The HTML of the page for a webchat binding. Raises NotFound."""
    binding = binding_for(svc, "webchat", binding_id)
    settings = {"binding": binding.binding_id, "token": binding.secrets.get("token", ""),
                "pollMs": POLL_INTERVAL_MS}
    # json.dumps then escaping "<" keeps "</script>" (or "<!--") in a value from ending the script.
    embedded = json.dumps(settings).replace("<", "\\u003c")
    return _HTML.replace("__SETTINGS__", embedded)


_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ruche webchat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header { padding: .6rem 1rem; background: #2d3142; color: #fff; }
  #log { flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column; gap: .5rem; }
  .msg { max-width: 70%; padding: .5rem .75rem; border-radius: .75rem; white-space: pre-wrap; }
  .user { align-self: flex-end; background: #4f5d75; color: #fff; }
  .agent { align-self: flex-start; background: #eee; }
  .pending { opacity: .6; }
  form { display: flex; gap: .5rem; padding: .75rem; border-top: 1px solid #ddd; }
  input { flex: 1; padding: .5rem; font-size: 1rem; }
  #status { font-size: .8rem; color: #a33; padding: 0 1rem; min-height: 1.2em; }
</style>
</head>
<body>
<header>Try the agent</header>
<div id="log" aria-live="polite"></div>
<div id="status"></div>
<form id="composer">
  <input id="text" autocomplete="off" placeholder="Type a message" aria-label="message">
  <button id="send" type="submit">Send</button>
</form>
<script>
(() => {
  const settings = __SETTINGS__;
  const postUrl = new URL("../" + encodeURIComponent(settings.binding), location.href);
  const pollUrl = new URL("messages", location.href);
  const storageKey = "ruche-visitor-" + settings.binding;
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  let visitorToken = localStorage.getItem(storageKey);
  let lastId = null;
  const pending = [];  // {text, element}: shown until the transcript holds the message

  function bubble(role, text, isPending) {
    const element = document.createElement("div");
    element.className = "msg " + role + (isPending ? " pending" : "");
    element.dataset.role = role;
    element.textContent = text;
    log.appendChild(element);
    log.scrollTop = log.scrollHeight;
    return element;
  }

  function clientId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^\\w-]/g, "");
  }

  async function send(text) {
    const entry = {text, element: bubble("user", text, true)};
    pending.push(entry);
    const body = {message: text, client_message_id: clientId()};
    if (visitorToken) body.visitor_token = visitorToken;
    const answer = await fetch(postUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + settings.token},
      body: JSON.stringify(body),
    });
    if (answer.status !== 202) { status.textContent = "Sending failed (" + answer.status + ")"; return; }
    status.textContent = "";
    const accepted = await answer.json();
    visitorToken = accepted.visitor_token;
    localStorage.setItem(storageKey, visitorToken);
  }

  async function poll() {
    if (!visitorToken) return;
    const url = new URL(pollUrl);
    if (lastId) url.searchParams.set("after", lastId);
    const answer = await fetch(url, {headers: {"Authorization": "Bearer " + settings.token,
                                               "X-Visitor-Token": visitorToken}});
    if (!answer.ok) { status.textContent = "Polling failed (" + answer.status + ")"; return; }
    const {messages} = await answer.json();
    for (const message of messages) {
      lastId = message.message_id;
      const waiting = message.role === "user" ? pending.findIndex(p => p.text === message.text) : -1;
      if (waiting >= 0) { pending[waiting].element.remove(); pending.splice(waiting, 1); }
      bubble(message.role, message.text, false);
    }
  }

  document.getElementById("composer").addEventListener("submit", event => {
    event.preventDefault();
    const input = document.getElementById("text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text).catch(error => { status.textContent = "Sending failed: " + error; });
  });

  setInterval(() => { poll().catch(error => { status.textContent = "Polling failed: " + error; }); },
              settings.pollMs);
})();
</script>
</body>
</html>
"""
