// A small SVG chart: stacked bars per date bin, one colour per series, and an optional line (the previous
// period). Heights are pixels, so floating point is fine here; every amount a person reads (tooltips,
// totals, the table) is the API's exact decimal text.

const NS = "http://www.w3.org/2000/svg";
// Colour-blind-safe palette (Okabe–Ito, then Tableau), all readable against white.
export const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7f7f7f", "#bcbd22",
  "#17becf", "#8c564b", "#9467bd", "#2f4b7c"];

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function short(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + "B";
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v * 100) / 100);
}

/**
 * Draws into `container`: `bins` (x labels, oldest first), `series` [{name, values: {bin: [number, text]}}],
 * `line` optional {name, values: [number per bin index]}.
 */
export function stackedBars(container, { bins, series, line, currency, title }) {
  container.replaceChildren();
  const width = Math.max(640, Math.min(1240, container.clientWidth || 960));
  const height = 300, left = 64, right = 12, top = 12, bottom = 46;
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  el("title", {}, svg).textContent = title || "Costs per period";
  let maxPos = 0, minNeg = 0;
  bins.forEach((b) => {
    let pos = 0, neg = 0;
    for (const s of series) { const v = s.values[b] ? s.values[b][0] : 0; if (v >= 0) pos += v; else neg += v; }
    maxPos = Math.max(maxPos, pos); minNeg = Math.min(minNeg, neg);
  });
  if (line) for (const v of line.values) if (v != null) { maxPos = Math.max(maxPos, v); minNeg = Math.min(minNeg, v); }
  const hi = niceMax(maxPos), lo = minNeg < 0 ? -niceMax(-minNeg) : 0;
  const plotH = height - top - bottom, plotW = width - left - right;
  const y = (v) => top + (hi - v) / (hi - lo) * plotH;
  // Grid and y labels.
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    el("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), stroke: "#d9dee3" }, svg);
    const t = el("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#4a5561" }, svg);
    t.textContent = short(v);
  }
  el("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), stroke: "#4a5561" }, svg);
  const step = plotW / Math.max(1, bins.length);
  const barW = Math.max(1, Math.min(48, step * 0.72));
  const every = Math.ceil(bins.length / Math.floor(plotW / 70 || 1));
  bins.forEach((b, i) => {
    const x = left + i * step + (step - barW) / 2;
    let pos = 0, neg = 0;
    series.forEach((s, si) => {
      const cell = s.values[b];
      if (!cell || cell[0] === 0) return;
      const v = cell[0];
      const from = v >= 0 ? pos : neg, to = from + v;
      if (v >= 0) pos = to; else neg = to;
      const r = el("rect", { x, width: barW, y: Math.min(y(from), y(to)), height: Math.max(0.5, Math.abs(y(from) - y(to))),
        fill: PALETTE[si % PALETTE.length] }, svg);
      el("title", {}, r).textContent = `${b} · ${s.name}: ${cell[1]} ${currency || ""}`;
    });
    if (i % every === 0) {
      const t = el("text", { x: left + i * step + step / 2, y: height - bottom + 16, "text-anchor": "middle", "font-size": 11, fill: "#4a5561" }, svg);
      t.textContent = b;
    }
  });
  if (line && line.values.some((v) => v != null)) {
    const pts = line.values.map((v, i) => v == null ? null : `${left + i * step + step / 2},${y(v)}`).filter(Boolean);
    el("polyline", { points: pts.join(" "), fill: "none", stroke: "#16191d", "stroke-width": 2, "stroke-dasharray": "5 4" }, svg);
  }
  container.appendChild(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  series.forEach((s, si) => {
    const item = document.createElement("span");
    const sw = document.createElement("i");
    sw.style.background = PALETTE[si % PALETTE.length];
    item.append(sw, s.name);
    legend.appendChild(item);
  });
  if (line) {
    const item = document.createElement("span");
    item.textContent = "- - " + line.name;
    legend.appendChild(item);
  }
  container.appendChild(legend);
}

/**
 * An anomaly's history as a small line chart: `days` [{date, value, text}] oldest first (every day, missing
 * ones 0), the usual band (`expected`..`upper`, numbers) shaded across it, and the anomaly's day (`day`) a dot.
 */
export function historyChart(container, { days, expected, upper, day, currency, title }) {
  container.replaceChildren();
  const width = 480, height = 120, left = 44, right = 8, top = 8, bottom = 20;
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "history" });
  el("title", {}, svg).textContent = title;
  const hi = niceMax(Math.max(upper, expected, ...days.map((d) => d.value), 0));
  const plotW = width - left - right, plotH = height - top - bottom;
  const x = (i) => left + (days.length > 1 ? i / (days.length - 1) : 0.5) * plotW;
  const y = (v) => top + (hi - Math.max(0, Math.min(v, hi))) / hi * plotH;
  el("rect", { class: "usual-band", x: left, width: plotW, y: y(upper), height: Math.max(1, y(expected) - y(upper)), fill: "#0072b2", "fill-opacity": 0.18 }, svg);
  el("line", { x1: left, x2: width - right, y1: y(expected), y2: y(expected), stroke: "#0072b2", "stroke-dasharray": "4 3" }, svg);
  for (const v of [0, hi]) {
    const t = el("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#4a5561" }, svg);
    t.textContent = short(v);
  }
  el("polyline", { points: days.map((d, i) => `${x(i)},${y(d.value)}`).join(" "), fill: "none", stroke: "#16191d", "stroke-width": 1.5 }, svg);
  days.forEach((d, i) => {
    const dot = el("circle", { cx: x(i), cy: y(d.value), r: d.date === day ? 4 : 1.5, fill: d.date === day ? "#d55e00" : "#16191d" }, svg);
    el("title", {}, dot).textContent = `${d.date}: ${d.text} ${currency || ""}`;
  });
  for (const [i, anchor] of [[0, "start"], [days.length - 1, "end"]]) {
    if (!days[i]) continue;
    const t = el("text", { x: x(i), y: height - 6, "text-anchor": anchor, "font-size": 10, fill: "#4a5561" }, svg);
    t.textContent = days[i].date;
  }
  container.appendChild(svg);
}
