// Charts drawn by the page itself as SVG: daily bars (stacked when there are several series) and
// horizontal bars for rankings. Each has a title with its unit, a y axis with round ticks and a
// date axis, and a <title> tooltip on every bar with its exact value.

import {h, plural, s} from "./dom.js";

const WIDTH = 640, HEIGHT = 240;
const PAD = {left: 56, right: 12, top: 12, bottom: 40};

/** Round ticks from 0 up to at least `top` (steps of 1, 2, 2.5 or 5 × 10^n; whole steps for counts). */
export function ticks(top, {count = 4, integer = false} = {}) {
  if (!(top > 0)) return [0, 1];
  const raw = top / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map(m => m * magnitude).find(candidate => candidate >= raw);
  if (integer && !Number.isInteger(step)) step = step < 1 ? 1 : Math.ceil(step / 5) * 5;
  const result = [];
  for (let value = 0; value <= top + step * 0.999; value += step) result.push(Number(value.toPrecision(12)));
  return result;
}

/**
 * Daily bars. series: [{name, className, values: [number per label]}], stacked in order.
 * format(value) writes axis ticks and tooltips (units included); integer: counts, whole ticks only.
 */
export function dailyBars({id, title, labels, series, format, integer = false}) {
  const totals = labels.map((_, i) => series.reduce((sum, one) => sum + (one.values[i] || 0), 0));
  const axis = ticks(Math.max(...totals, 0), {integer});
  const top = axis[axis.length - 1];
  const plotW = WIDTH - PAD.left - PAD.right, plotH = HEIGHT - PAD.top - PAD.bottom;
  const y = value => PAD.top + plotH - (top ? (value / top) * plotH : 0);
  const slot = plotW / Math.max(labels.length, 1);
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const every = Math.ceil(labels.length / 10);  // at most ~10 date labels
  const svg = s("svg", {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, class: "chart"},
    axis.map(value => s("g", {class: "tick"},
      s("line", {x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value)}),
      s("text", {x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end"}, format(value)))),
    labels.map((label, i) => {
      const x = PAD.left + slot * i + (slot - barW) / 2;
      let base = 0;
      const parts = series.map(one => {
        const value = one.values[i] || 0;
        const rect = s("rect", {class: `bar ${one.className || ""}`, x, width: barW, y: y(base + value),
                               height: y(base) - y(base + value), "data-value": Number(value.toFixed(2))},
          s("title", {}, `${label} · ${one.name}: ${format(value)}`));
        base += value;
        return rect;
      });
      const text = i % every === 0
        ? s("text", {class: "label", x: x + barW / 2, y: HEIGHT - PAD.bottom + 16, "text-anchor": "middle"},
          label.slice(5))
        : null;
      return s("g", {class: "day", "data-date": label}, parts, text);
    }),
    s("line", {class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH}),
    s("line", {class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH}),
    s("text", {class: "label", x: PAD.left + plotW / 2, y: HEIGHT - 6, "text-anchor": "middle"}, "date (UTC)"));
  const legend = series.length > 1
    ? h("p", {class: "legend"}, series.map(one => h("span", {class: `key ${one.className || ""}`}, one.name)))
    : null;
  return h("figure", {id, class: "chart-box"}, h("figcaption", {}, title), svg, legend);
}

/** Horizontal bars for a ranking: items [{label, value}], largest first; unit is singular ("turn"). */
export function rankBars({id, title, items, unit}) {
  if (!items.length) return h("figure", {id, class: "chart-box"}, h("figcaption", {}, title), h("p", {class: "none"}, "None in this period."));
  const rowH = 24, labelW = 180, width = WIDTH, height = rowH * items.length + 24;
  const top = ticks(Math.max(...items.map(item => item.value)), {integer: true});
  const max = top[top.length - 1];
  const x = value => labelW + (max ? (value / max) * (width - labelW - 60) : 0);
  return h("figure", {id, class: "chart-box"}, h("figcaption", {}, title),
    s("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart"},
      items.map((item, i) => s("g", {class: "rank"},
        s("text", {x: labelW - 8, y: i * rowH + 16, "text-anchor": "end"}, item.label),
        s("rect", {class: "bar", x: labelW, y: i * rowH + 4, height: rowH - 8, width: x(item.value) - labelW,
                   "data-value": item.value}, s("title", {}, `${item.label}: ${plural(item.value, unit)}`)),
        s("text", {x: x(item.value) + 6, y: i * rowH + 16}, plural(item.value, unit)))),
      s("line", {class: "axis", x1: labelW, x2: labelW, y1: 0, y2: rowH * items.length})));
}
