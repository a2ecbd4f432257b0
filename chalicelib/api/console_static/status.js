// The notice line under the header, and `guard`, which hands any failure of an event handler to the
// shell (app.js registers it), so a click never ends in an uncaught error.

const notice = document.getElementById("notice");
let report = () => {};

export function onFailure(handler) { report = handler; }

export function guard(handler) {
  return (...args) => { Promise.resolve().then(() => handler(...args)).catch(error => report(error)); };
}

export function say(kind, text) {
  notice.hidden = !text;
  notice.className = kind || "";
  notice.textContent = text || "";
}
