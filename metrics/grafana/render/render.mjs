// render.mjs evaluates every query of metrics/grafana/invacache.json on a
// Prometheus server (its HTTP API, query_range) over a time window and writes
// a self-contained HTML page that draws the panels with uPlot, laid out on
// the dashboard's grid. It is not Grafana: the same PromQL expressions, drawn
// by a small page. render.sh runs it against a Prometheus that scraped a
// demo run.
//
// Usage: node render.mjs PROM_URL START END STEP OUT.html [TITLE]
// (START and END in unix seconds, STEP in seconds).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [prom, start, end, step, out, title] = process.argv.slice(2);
if (!out) {
  console.error("usage: node render.mjs PROM_URL START END STEP OUT.html [TITLE]");
  process.exit(2);
}
const dash = JSON.parse(readFileSync(join(here, "..", "invacache.json"), "utf8"));

// The dashboard's variables, as Grafana expands them with "All" selected;
// $__rate_interval as Grafana computes it for a 1 s scrape interval and a
// 1 s step (max(step + scrape interval, 4 * scrape interval)).
const rateInterval = `${Math.max(2 * Number(step), 4)}s`;
function expand(expr) {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$job", ".*")
    .replaceAll("$instance", ".*")
    .replaceAll("$name", ".*");
}

function legend(fmt, metric) {
  return fmt.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l) => metric[l] ?? "");
}

async function queryRange(expr) {
  const u = new URL("/api/v1/query_range", prom);
  u.search = new URLSearchParams({ query: expr, start, end, step }).toString();
  const r = await fetch(u);
  const body = await r.json();
  if (body.status !== "success") {
    throw new Error(`query ${expr}: ${body.error ?? r.status}`);
  }
  return body.data.result;
}

const times = [];
for (let t = Number(start); t <= Number(end); t += Number(step)) times.push(t);

const panels = [];
for (const p of dash.panels) {
  if (p.type === "row") {
    panels.push({ type: "row", title: p.title, gridPos: p.gridPos });
    continue;
  }
  const series = [];
  for (const t of p.targets) {
    const expr = expand(t.expr);
    for (const r of await queryRange(expr)) {
      const byTime = new Map(r.values.map(([ts, v]) => [Number(ts), Number(v)]));
      series.push({
        label: legend(t.legendFormat, r.metric) || expr,
        values: times.map((ts) => (byTime.has(ts) && Number.isFinite(byTime.get(ts)) ? byTime.get(ts) : null)),
      });
    }
  }
  panels.push({
    type: p.type,
    title: p.title,
    gridPos: p.gridPos,
    unit: p.fieldConfig?.defaults?.unit ?? "short",
    draw: p.fieldConfig?.defaults?.custom?.drawStyle ?? "line",
    stepped: p.fieldConfig?.defaults?.custom?.lineInterpolation === "stepAfter",
    log: p.fieldConfig?.defaults?.custom?.scaleDistribution?.type === "log",
    min: p.fieldConfig?.defaults?.min,
    max: p.fieldConfig?.defaults?.max,
    mappings: p.fieldConfig?.defaults?.mappings?.[0]?.options ?? null,
    series,
  });
  console.error(`${p.title}: ${series.length} series`);
}

const uplotJS = readFileSync(join(here, "node_modules/uplot/dist/uPlot.iife.min.js"), "utf8");
const uplotCSS = readFileSync(join(here, "node_modules/uplot/dist/uPlot.min.css"), "utf8");
const data = { title: title ?? dash.title, times, panels, rateInterval };

writeFileSync(
  out,
  `<!doctype html><html><head><meta charset="utf-8"><style>${uplotCSS}
body { margin: 0; background: #111217; color: #ccccdc; font: 12px "DejaVu Sans", sans-serif; }
h1 { font-size: 16px; font-weight: 500; margin: 10px 12px 2px; }
.sub { color: #8e8e9e; margin: 0 12px 8px; }
#grid { position: relative; margin: 0 8px; }
.panel { position: absolute; background: #181b1f; border: 1px solid #2a2d33; border-radius: 2px; box-sizing: border-box; padding: 4px 6px; overflow: hidden; }
.panel h2 { font-size: 13px; font-weight: 500; margin: 2px 2px 4px; color: #d8d9da; }
.row { position: absolute; font-size: 14px; font-weight: 500; color: #d8d9da; }
.u-legend { color: #ccccdc; font-size: 11px; text-align: left; }
.u-legend .u-series { display: inline-block; width: 232px; overflow: hidden; white-space: nowrap; }
.u-legend .u-series > * { padding: 1px 2px; }
.u-legend .u-marker { width: 10px; height: 3px; }
.u-legend th { font-weight: 400; }
.u-legend td { padding: 0 4px; }
</style><script>${uplotJS}</script></head><body>
<h1>${data.title}</h1>
<div class="sub" id="sub"></div>
<div id="grid"></div>
<script>
const data = ${JSON.stringify(data)};
const COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0", "#37872d", "#fade2a"];
const W = 1560, UNIT = W / 24, ROWH = 30;
document.getElementById("sub").textContent =
  "Each panel is a query of metrics/grafana/invacache.json evaluated by Prometheus over a real demo run (scraped every 1 s; $__rate_interval = " +
  data.rateInterval + "), drawn without Grafana.";
const grid = document.getElementById("grid");
grid.style.width = W + "px";
let maxY = 0;
function fmt(unit, v) {
  if (v == null) return "";
  const a = Math.abs(v);
  if (a === 0) return "0";
  switch (unit) {
  case "percentunit": return (100 * v).toFixed(a >= 0.1 ? 0 : 1) + "%";
  case "s": return a >= 1 ? v.toFixed(1) + " s" : a >= 1e-3 ? (v * 1e3).toFixed(a >= 0.01 ? 0 : 1) + " ms" : (v * 1e6).toFixed(0) + " µs";
  case "reqps": case "ops": return (a >= 1000 ? (v / 1000).toFixed(1) + "k" : v.toFixed(a >= 10 || a === 0 ? 0 : 1)) + "/s";
  default: return a >= 1000 ? (v / 1000).toFixed(1) + "k" : v.toFixed(a >= 10 || Number.isInteger(v) ? 0 : 1);
  }
}
for (const p of data.panels) {
  const g = p.gridPos;
  maxY = Math.max(maxY, (g.y + g.h) * ROWH);
  if (p.type === "row") {
    const d = document.createElement("div");
    d.className = "row"; d.textContent = p.title;
    d.style.left = "4px"; d.style.top = g.y * ROWH + 6 + "px";
    grid.appendChild(d);
    continue;
  }
  const el = document.createElement("div");
  el.className = "panel";
  Object.assign(el.style, { left: g.x * UNIT + "px", top: g.y * ROWH + "px", width: g.w * UNIT - 6 + "px", height: g.h * ROWH - 6 + "px" });
  el.innerHTML = "<h2></h2>";
  el.firstChild.textContent = p.title;
  grid.appendChild(el);
  const width = g.w * UNIT - 20;
  let height = g.h * ROWH - 6 - 26;
  if (p.type === "state-timeline") { stateTimeline(el, p, width, height); continue; }
  // Room for the legend below the plot: 240 px per entry.
  height -= 17 * Math.ceil(Math.max(p.series.length, 1) / Math.max(1, Math.floor(width / 240))) + 4;
  const series = [{}];
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const o = { label: s.label, stroke: c, width: 1.5, value: (u, v) => fmt(p.unit, v), points: { show: false } };
    if (p.draw === "bars") Object.assign(o, { fill: c + "cc", paths: uPlot.paths.bars({ size: [0.9, 12] }), points: { show: false } });
    else if (p.stepped) Object.assign(o, { width: 2, paths: uPlot.paths.stepped({ align: 1 }) });
    else o.fill = c + "18";
    series.push(o);
  });
  if (p.series.length === 0) series.push({ label: "no data", stroke: "#555" });
  const decades = (u, i, lo, hi) => { const s = []; for (let v = 10 ** Math.floor(Math.log10(lo)); v <= hi * 1.0001; v *= 10) if (v >= lo / 1.0001) s.push(v); return s; };
  const yScale = p.log ? { distr: 3, log: 10 } : { range: (u, lo, hi) => [p.min ?? Math.min(0, lo), p.max ?? (hi > 0 ? hi * 1.1 : 1)] };
  const axis = { stroke: "#8e8e9e", grid: { stroke: "#2a2d33", width: 1 }, ticks: { stroke: "#2a2d33" }, font: "11px DejaVu Sans" };
  new uPlot({
    width, height, series,
    scales: { x: { time: true }, y: yScale },
    axes: [axis, { ...axis, size: 62, values: (u, vals) => vals.map((v) => fmt(p.unit, v)), ...(p.log ? { splits: decades } : {}) }],
    legend: { live: false },
    cursor: { show: false },
  }, [data.times, ...(p.series.length ? p.series.map((s) => s.values) : [data.times.map(() => null)])], el);
}
function stateTimeline(el, p, width, height) {
  const cv = document.createElement("canvas");
  cv.width = width; cv.height = height;
  el.appendChild(cv);
  const ctx = cv.getContext("2d");
  const labelW = 190, axisH = 18, n = Math.max(p.series.length, 1);
  const rowH = (height - axisH) / n;
  const t0 = data.times[0], t1 = data.times[data.times.length - 1];
  const x = (t) => labelW + (t - t0) / (t1 - t0) * (width - labelW - 4);
  ctx.font = "11px DejaVu Sans";
  p.series.forEach((s, i) => {
    const y = i * rowH;
    ctx.fillStyle = "#ccccdc"; ctx.textBaseline = "middle";
    ctx.fillText(s.label, 2, y + rowH / 2);
    for (let j = 0; j < data.times.length - 1; j++) {
      const v = s.values[j];
      const m = v == null ? null : p.mappings?.[String(v)];
      ctx.fillStyle = v == null ? "#2a2d33" : m ? { green: "#73bf69", red: "#f2495c" }[m.color] ?? m.color : "#8e8e9e";
      ctx.fillRect(x(data.times[j]), y + 2, x(data.times[j + 1]) - x(data.times[j]) + 0.5, rowH * 0.8);
    }
  });
  ctx.fillStyle = "#8e8e9e"; ctx.textBaseline = "top";
  for (let k = 0; k <= 4; k++) {
    const t = t0 + (t1 - t0) * k / 4;
    const d = new Date(t * 1000);
    ctx.fillText(d.toISOString().substring(11, 19), Math.min(x(t), width - 52), height - axisH + 4);
  }
  const legend = document.createElement("div");
  legend.className = "u-legend";
  const entries = Object.values(p.mappings ?? {}).sort((a, b) => a.index - b.index);
  legend.innerHTML = entries.map((m) => '<span style="display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;background:' +
    ({ green: "#73bf69", red: "#f2495c" }[m.color] ?? m.color) + '"></span>' + m.text).join("");
  el.appendChild(legend);
}
grid.style.height = maxY + "px";
document.body.setAttribute("data-ready", "1");
</script></body></html>
`,
);
console.error(`wrote ${out}`);
