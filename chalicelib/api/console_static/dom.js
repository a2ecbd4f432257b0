// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so nothing a user or an
// agent wrote can become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("td", {class: "num"}, "42"). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same call shape as h(). */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function replace(parent, ...children) {
  parent.replaceChildren();
  return fill(parent, {}, children);
}

/** A table from a header row and rows of cells (each a value or a node). */
export function table(headers, rows, attrs) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map(name => h("th", {}, name)))),
    h("tbody", {}, rows.map(cells => h("tr", {}, cells.map(cell => h("td", {}, cell))))));
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function percent(rate) {
  return `${(100 * (rate || 0)).toFixed(1)} %`;
}

export function badge(text, kind) {
  return h("span", {class: `badge ${kind || ""}`}, text);
}

export function message(kind, text) {
  return h("p", {class: `message ${kind}`, role: kind === "error" ? "alert" : "status"}, text);
}

/** "1 turn", "3 turns". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
