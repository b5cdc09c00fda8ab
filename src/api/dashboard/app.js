// fleetpoll dashboard: plain DOM and SVG, no framework, no requests beyond this server's API.
// Every page keeps its state (filters, sort, period, zoom, paging) in the URL, so a reload or a
// shared link shows the same thing, and auto-refresh redraws from that state.
"use strict";

const REFRESH_MS = 15000;
const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

// ---------- small helpers ----------

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/// `el("td", {class: "x", text: "hi", "data-id": 1, onclick: f}, child...)`
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const c of children.flat()) if (c != null) e.append(c);
  return e;
}

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
}

const fmtPct = v => (v == null ? "–" : v.toFixed(1) + "%");
const fmtNum = (v, d = 2) => (v == null ? "–" : Number(v).toFixed(d));

function fmtBytes(v) {
  if (v == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let x = Number(v);
  while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return (i === 0 ? x.toFixed(0) : x.toFixed(x < 10 ? 2 : 1)) + " " + units[i];
}

function fmtTime(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function fmtAgo(iso) {
  if (!iso) return "never";
  return fmtAge(Math.round((Date.now() - new Date(iso).getTime()) / 1000));
}

/// "7 min ago" for an age in seconds.
function fmtAge(s) {
  if (s < 0) return "just now";
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 129600) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function fmtDuration(secs) {
  if (secs == null) return "–";
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

/// Names each body cell after its column (`data-label`): on a phone such a table shows each row
/// as a card of labelled cells (app.css, `stack-narrow`), since its columns do not fit 390 px.
function labelCells(table) {
  const names = $$("thead th", table).map(th => th.textContent.trim());
  for (const tr of $$("tbody tr", table)) {
    Array.from(tr.children).forEach((td, i) => { if (!td.hasAttribute("colspan") && names[i]) td.dataset.label = names[i]; });
  }
}

function params() { return new URLSearchParams(location.search); }

/// Replaces the URL's query with the non-empty values of `obj` (no new history entry).
function setParams(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v != null && v !== "") q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

function banner(message) {
  const b = $("#banner");
  if (!b) return;
  b.textContent = message || "";
  b.hidden = !message;
}

class HttpError extends Error {
  constructor(status, body) {
    super((body && body.error) || `request failed (${status})`);
    this.status = status;
    this.body = body || {};
  }
}

/// `next` if it is a path on this server, else "/". A path is "/" alone or "/" followed by
/// anything but "/" or "\" (browsers read "//host" and "/\host" as another host), with no
/// control character (browsers drop tabs and newlines from URLs, so "/\t/host" is "//host").
/// The server builds its `next` by the same rule (dashboard.rs).
function localPath(next) {
  return typeof next === "string" && /^\/(?![\/\\])/.test(next) && !/[\u0000-\u001f\u007f]/.test(next) ? next : "/";
}

function toLogin() {
  location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) {
    toLogin();
    throw new HttpError(401, { error: "your session ended; log in again" });
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new HttpError(r.status, data);
  return data;
}

/// Runs `load` now and every REFRESH_MS while the tab is visible; counts successes on <body>.
function autoRefresh(load) {
  let timer = null;
  let running = false;
  async function tick() {
    clearTimeout(timer);
    if (running) return;
    // Redrawing would drop a zoom the user is dragging out: wait until it is done.
    if ($(".chart.dragging")) { timer = setTimeout(tick, 1000); return; }
    running = true;
    try {
      await load();
      banner("");
      const b = document.body;
      b.dataset.refreshes = String(Number(b.dataset.refreshes || 0) + 1);
      b.dataset.ready = "1";
      const u = $("#updated");
      if (u) u.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      if (e.status !== 401) banner("Could not load: " + e.message);
    } finally {
      running = false;
      timer = setTimeout(tick, REFRESH_MS);
    }
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  tick();
  return tick;
}

// ---------- session ----------

let ME = { name: "", role: "viewer" };
const canOperate = () => ME.role === "operator" || ME.role === "admin";

async function loadMe() {
  ME = await api("/api/auth/me");
  $("#whoami").textContent = `${ME.name} (${ME.role})`;
  document.body.dataset.role = ME.role;
}

// ---------- charts ----------

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/// Round tick values from lo up to the first one at or above hi: steps of 1, 2, 2.5 or 5 times a
/// power of ten, about `count` of them. Values are rounded to 12 digits so that 3 × 0.1 is 0.3.
function ticks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw) || raw;
  const out = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let i = first; out.length < 50; i++) {
    const v = +(i * step).toPrecision(12);
    out.push(v);
    if (v >= hi - step * 1e-9) break;
  }
  return out;
}

/// A y axis from 0 to at least `hi`, ticked at round values in the unit its labels show: bytes
/// in the largest binary unit below `hi` (0, 100, 200 MiB; not 97.7 / 195.3 KiB), percentages
/// and plain numbers as they are. Returns the tick values (in the data's own unit), the axis top
/// (the last tick) and the label of a tick.
function axisTicks(unit, hi) {
  const plain = v => String(+v.toPrecision(12));
  if (unit === "bytes") {
    // An all-zero series still gets a readable axis: up to 1 KiB, not fractions of a byte.
    if (!(hi > 0)) hi = 1024;
    let k = 0;
    while (k < BYTE_UNITS.length - 1 && hi >= Math.pow(1024, k + 1)) k++;
    const div = Math.pow(1024, k);
    // Whole bytes only: below 4 B a step of 1 B.
    const tk = ticks(0, k === 0 ? Math.max(hi, 4) : hi / div);
    return { tk: tk.map(v => v * div), top: tk[tk.length - 1] * div, label: v => `${plain(v / div)} ${BYTE_UNITS[k]}` };
  }
  if (!(hi > 0)) hi = 1;
  const tk = ticks(0, hi);
  return { tk, top: tk[tk.length - 1], label: unit === "pct" ? v => plain(v) + "%" : plain };
}

/// Candidate spacings of the time axis, finest first: fixed lengths up to hours, then calendar
/// days and months in local time (so day ticks fall on midnight whatever the time zone).
const TIME_STEPS = [
  ...[1, 2, 5, 10, 15, 30].map(n => ({ ms: n * 1e3 })),
  ...[1, 2, 5, 10, 15, 30].map(n => ({ ms: n * 60e3 })),
  ...[1, 2, 3, 6, 12].map(n => ({ ms: n * 3600e3 })),
  ...[1, 2, 7, 14].map(n => ({ days: n })),
  ...[1, 2, 3, 6, 12].map(n => ({ months: n })),
];
const stepMs = s => s.ms || (s.days ? s.days * 86400e3 : s.months * 30.44 * 86400e3);
const TIME_FORMATS = {
  seconds: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }),
  minutes: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
  days: new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" }),
};

/// One label format per step, so every label of an axis reads the same way: 24-hour clock time
/// (with seconds only when the step is under a minute), or the date from a step of a day up.
function timeFormatOf(step) {
  const f = !step.ms ? TIME_FORMATS.days : step.ms < 60e3 ? TIME_FORMATS.seconds : TIME_FORMATS.minutes;
  return t => f.format(new Date(t));
}

/// The tick times of `step` within [t0, t1], on round local clock or calendar values.
function timeTicksOf(t0, t1, step) {
  const out = [];
  if (step.ms) {
    // Aligned to the local clock: in "local milliseconds since the epoch" a multiple of the step.
    const off = new Date(t0).getTimezoneOffset() * 60e3;
    for (let t = Math.ceil((t0 - off) / step.ms) * step.ms + off; t <= t1 && out.length < 1000; t += step.ms) out.push(t);
    return out;
  }
  const d = new Date(t0);
  d.setHours(0, 0, 0, 0);
  if (step.months) {
    d.setDate(1);
    while (d.getTime() < t0 || d.getMonth() % step.months) d.setMonth(d.getMonth() + 1);
    for (; d.getTime() <= t1 && out.length < 1000; d.setMonth(d.getMonth() + step.months)) out.push(d.getTime());
  } else {
    while (d.getTime() < t0) d.setDate(d.getDate() + 1);
    for (; d.getTime() <= t1 && out.length < 1000; d.setDate(d.getDate() + step.days)) out.push(d.getTime());
  }
  return out;
}

/// The time axis of a plot `pw` px wide from `x0`: the finest step whose labels, as wide as
/// `measure` says, keep a gap between neighbours (so they never overlap, even at 390 px). Labels
/// that would stick out of [0, W] are dropped. Returns `[{t, x, label}]`.
function timeAxis(t0, t1, x0, pw, W, measure) {
  const span = t1 - t0 || 1;
  const xOf = t => x0 + ((t - t0) / span) * pw;
  for (const step of TIME_STEPS) {
    // Skip at once what cannot fit (a 1 s step over a year), before measuring anything.
    if ((stepMs(step) / span) * pw < 20 && step !== TIME_STEPS[TIME_STEPS.length - 1]) continue;
    const fmt = timeFormatOf(step);
    const ts = timeTicksOf(t0, t1, step);
    const labs = ts.map(t => { const label = fmt(t); return { t, x: xOf(t), label, w: measure(label) }; });
    const fits = labs.every((l, i) => i === 0 || l.x - labs[i - 1].x >= (l.w + labs[i - 1].w) / 2 + 16);
    if (fits || step === TIME_STEPS[TIME_STEPS.length - 1]) return labs.filter(l => l.x - l.w / 2 >= 0 && l.x + l.w / 2 <= W);
  }
  return [];
}

/// The longest time between two consecutive points that still draws as one line: 1.5 times what
/// one point stands for (`resolutionSecs`, from the API's `resolution_secs`), or, from an API
/// that does not say, 1.5 times the median spacing of the points (issue #18).
function gapLimitMs(times, resolutionSecs) {
  if (resolutionSecs > 0) return 1.5 * resolutionSecs * 1000;
  const d = [];
  for (let i = 1; i < times.length; i++) d.push(times[i] - times[i - 1]);
  if (!d.length) return Infinity;
  d.sort((a, b) => a - b);
  const mid = d.length >> 1;
  return 1.5 * (d.length % 2 ? d[mid] : (d[mid - 1] + d[mid]) / 2);
}

/// The unbroken runs of `rows` for which `has(row)` holds: a row without a value, or a step
/// longer than `maxGapMs` from the previous row with one, starts a new run.
function runs(rows, has, maxGapMs) {
  const out = [];
  let cur = [];
  for (const r of rows) {
    if (!has(r)) { if (cur.length) out.push(cur); cur = []; continue; }
    if (cur.length && r.t - cur[cur.length - 1].t > maxGapMs) { out.push(cur); cur = []; }
    cur.push(r);
  }
  if (cur.length) out.push(cur);
  return out;
}

/// The SVG of series `si` of `rows` (`[{t, v: [...], lo?: [...], hi?: [...]}]`), with `x(t)` and
/// `y(value)` in px: `lines`, a polyline per unbroken run (a dot for a lone point), and `bands`,
/// a translucent area between min (`lo`) and max (`hi`) per run that has them, in the line's
/// colour. Runs break at gaps longer than `maxGapMs`. Pure: nothing is added to the page.
function seriesShapes({ rows, si, x, y, maxGapMs, color }) {
  const xy = (t, v) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`;
  const lines = runs(rows, r => r.v[si] != null, maxGapMs).map(run => run.length === 1
    ? svgEl("circle", { class: "series-dot", cx: x(run[0].t).toFixed(1), cy: y(run[0].v[si]).toFixed(1), r: 1.8, fill: color })
    : svgEl("polyline", { class: "series", stroke: color, points: run.map(r => xy(r.t, r.v[si])).join(" ") }));
  const banded = r => r.lo && r.hi && r.lo[si] != null && r.hi[si] != null;
  const bands = runs(rows, banded, maxGapMs).map(run => {
    // Along the max from left to right, back along the min: one closed area.
    const top = run.map(r => xy(r.t, r.hi[si]));
    const bottom = run.map(r => xy(r.t, r.lo[si])).reverse();
    const d = run.length === 1
      ? `M${top[0]}L${bottom[0]}`
      : `M${top.join("L")}L${bottom.join("L")}Z`;
    return svgEl("path", { class: run.length === 1 ? "band band-tick" : "band", d, fill: color, stroke: run.length === 1 ? color : null });
  });
  return { lines, bands };
}

/// A line chart over the time window `domain` ([sinceMs, untilMs]: the whole asked-for period,
/// so a gap or a late start shows as such). `rows` is `[{t: ms, v: [value per series]}]`, oldest
/// first, each maybe with `lo` and `hi` (min and max per series, drawn as bands); `series` is
/// `[{name, label, fmt, unit: "pct"|"bytes"|undefined, axis: "left"|"right"}]`. `resolution` is
/// the seconds one point stands for (the API's `resolution_secs`, when it says). The element
/// carries `data-points` = rows drawn and `data-from`/`data-to` = the window. Dragging across the
/// plot calls `onZoom(sinceMs, untilMs)`.
function lineChart({ key, title, series, rows, domain, yMax, resolution, exportName, onZoom }) {
  const maxGapMs = gapLimitMs(rows.map(r => r.t), resolution);
  const box = el("div", { class: "chart", "data-chart": key, "data-points": rows.length,
    "data-from": new Date(domain[0]).toISOString(), "data-to": new Date(domain[1]).toISOString(),
    "data-gap-ms": isFinite(maxGapMs) ? Math.round(maxGapMs) : null });
  const head = el("div", { class: "chart-head" },
    el("span", { class: "title", text: title }),
    el("span", { class: "legend" }, series.map((s, i) => el("span", {}, legendSwatch(i), s.label))),
    el("span", { class: "spacer" }),
    el("button", { type: "button", class: "export-csv", text: "CSV", title: "Download the shown data as CSV",
      onclick: () => downloadCsv(exportName, series, rows) }));
  const svg = svgEl("svg", { role: "img", "aria-label": title });
  const tip = el("div", { class: "tooltip", hidden: true });
  box.append(head, svg, tip);
  if (!rows.length) box.append(el("div", { class: "empty", text: "no samples in this range" }));
  // Drawn once the element has a width; redrawn when it changes.
  let lastWidth = 0;
  const draw = () => {
    const w = svg.clientWidth;
    if (!w || w === lastWidth) return;
    lastWidth = w;
    drawLines(box, svg, tip, { series, rows, domain, yMax, maxGapMs, onZoom, width: w, height: svg.clientHeight || 180 });
  };
  new ResizeObserver(draw).observe(svg);
  return box;
}

/// A chart's place holding a sentence instead of a plot ("no swap"): same title, no axes.
function noteChart({ key, title, note }) {
  return el("div", { class: "chart chart-note", "data-chart": key, "data-points": 0 },
    el("div", { class: "chart-head" }, el("span", { class: "title", text: title })),
    el("div", { class: "note", text: note }));
}

function legendSwatch(i) {
  const s = el("i");
  s.style.background = COLORS[i % COLORS.length];
  return s;
}

function drawLines(box, svg, tip, { series, rows, domain, yMax, maxGapMs, onZoom, width: W, height: H }) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const hasRight = series.some(s => s.axis === "right");
  const m = { l: 52, r: hasRight ? 60 : 10, t: 8, b: 22 };
  const pw = Math.max(10, W - m.l - m.r), ph = Math.max(10, H - m.t - m.b);
  const [t0, t1] = domain;
  const x = t => m.l + ((t - t0) / (t1 - t0 || 1)) * pw;
  const tAt = px => t0 + ((px - m.l) / pw) * (t1 - t0);

  const scale = axis => {
    const idx = series.map((s, i) => ((s.axis || "left") === axis ? i : -1)).filter(i => i >= 0);
    let hi = 0;
    for (const r of rows) for (const i of idx) for (const v of [r.v[i], r.hi && r.hi[i]]) if (v != null && v > hi) hi = v;
    if (axis === "left" && yMax != null) hi = Math.max(yMax, hi);
    const a = axisTicks((series[idx[0]] || {}).unit, hi);
    return { ...a, idx, y: v => m.t + ph - (v / a.top) * ph };
  };
  const left = scale("left");
  const right = hasRight ? scale("right") : null;

  for (const v of left.tk) {
    const yy = left.y(v);
    svg.append(svgEl("line", { class: "grid", x1: m.l, x2: m.l + pw, y1: yy, y2: yy }));
    const lab = svgEl("text", { class: "tick-y", x: m.l - 4, y: yy + 3, "text-anchor": "end" });
    lab.textContent = left.label(v);
    svg.append(lab);
  }
  if (right) for (const v of right.tk) {
    const lab = svgEl("text", { class: "tick-y right", x: m.l + pw + 4, y: right.y(v) + 3 });
    lab.textContent = right.label(v);
    svg.append(lab);
  }
  // Labels are measured in place (the font is the page's), then the probe goes.
  const probe = svgEl("text", { class: "tick-x", x: 0, y: -10 });
  svg.append(probe);
  const measure = s => { probe.textContent = s; return probe.getComputedTextLength() || s.length * 6; };
  const timeLabels = timeAxis(t0, t1, m.l, pw, W, measure);
  probe.remove();
  for (const l of timeLabels) {
    svg.append(svgEl("line", { class: "grid-x", x1: l.x, x2: l.x, y1: m.t + ph, y2: m.t + ph + 3 }));
    const lab = svgEl("text", { class: "tick-x", x: l.x.toFixed(1), y: H - 6, "text-anchor": "middle" });
    lab.textContent = l.label;
    svg.append(lab);
  }
  // Every band first, then every line: no band covers another series' line.
  const shapes = series.map((s, si) => seriesShapes({ rows, si, x, y: (s.axis === "right" ? right : left).y, maxGapMs,
    color: COLORS[si % COLORS.length] }));
  for (const sh of shapes) svg.append(...sh.bands);
  for (const sh of shapes) svg.append(...sh.lines);

  const cursor = svgEl("line", { class: "cursor", y1: m.t, y2: m.t + ph, visibility: "hidden" });
  const sel = svgEl("rect", { class: "selection", y: m.t, height: ph, width: 0, visibility: "hidden" });
  const plot = svgEl("rect", { class: "plot", x: m.l, y: m.t, width: pw, height: ph });
  svg.append(cursor, sel, plot);

  const localX = ev => {
    const b = svg.getBoundingClientRect();
    return Math.min(m.l + pw, Math.max(m.l, ((ev.clientX - b.left) / b.width) * W));
  };
  const nearest = px => {
    if (!rows.length) return null;
    const t = tAt(px);
    let best = rows[0];
    for (const r of rows) if (Math.abs(r.t - t) < Math.abs(best.t - t)) best = r;
    return best;
  };
  const valueText = (s, r, i) => {
    if (r.v[i] == null) return "–";
    const lo = r.lo && r.lo[i], hi = r.hi && r.hi[i];
    return s.fmt(r.v[i]) + (lo != null && hi != null ? ` (${s.fmt(lo)}–${s.fmt(hi)})` : "");
  };
  let dragFrom = null;
  plot.addEventListener("pointermove", ev => {
    const px = localX(ev);
    const r = nearest(px);
    if (r) {
      const cx = x(r.t);
      cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx); cursor.setAttribute("visibility", "visible");
      tip.replaceChildren(el("div", { text: fmtTime(new Date(r.t).toISOString()) }),
        ...series.map((s, i) => el("div", {}, legendSwatch(i), `${s.label}: ${valueText(s, r, i)}`)));
      tip.hidden = false;
      // Positioned inside the chart box (position: relative), beside the cursor line.
      const b = svg.getBoundingClientRect(), outer = box.getBoundingClientRect();
      const at = b.left - outer.left + cx * (b.width / W);
      tip.style.top = (b.top - outer.top + 6) + "px";
      tip.style.left = (at + 12 + tip.offsetWidth > b.right - outer.left ? at - tip.offsetWidth - 12 : at + 12) + "px";
    }
    if (dragFrom != null) {
      const a = Math.min(dragFrom, px), w = Math.abs(px - dragFrom);
      sel.setAttribute("x", a); sel.setAttribute("width", w); sel.setAttribute("visibility", "visible");
    }
  });
  plot.addEventListener("pointerleave", () => {
    cursor.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
  plot.addEventListener("pointerdown", ev => {
    if (ev.button !== 0 || rows.length < 2) return;
    dragFrom = localX(ev);
    box.classList.add("dragging");
    plot.setPointerCapture(ev.pointerId);
  });
  const endDrag = ev => {
    if (dragFrom == null) return;
    const px = localX(ev);
    const from = dragFrom;
    dragFrom = null;
    box.classList.remove("dragging");
    sel.setAttribute("visibility", "hidden");
    // A click (or a tiny wobble) is not a zoom.
    if (Math.abs(px - from) < 10 || !onZoom) return;
    const a = tAt(Math.min(from, px)), b = tAt(Math.max(from, px));
    onZoom(Math.floor(a), Math.ceil(b));
  };
  plot.addEventListener("pointerup", endDrag);
  plot.addEventListener("pointercancel", () => { dragFrom = null; box.classList.remove("dragging"); sel.setAttribute("visibility", "hidden"); });
}

/// Quotes a CSV cell when needed and defuses spreadsheet formulas, as the server's activity
/// export does (`csv_cell` in activity.rs): mount and container names come from the host, and
/// a name such as `=HYPERLINK(...)` must not run in the spreadsheet that opens the file. Numbers
/// are values we computed and stay numbers (a negative one would otherwise turn into text).
function csvCell(v) {
  let s = String(v);
  if (typeof v !== "number" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/// The shown rows as CSV: RFC 3339 UTC time, then one column per series, each followed by
/// `<name>_min` and `<name>_max` when its points carry a min and max (rollup tiers).
function toCsv(series, rows) {
  const banded = series.map((_, i) => rows.some(r => (r.lo && r.lo[i] != null) || (r.hi && r.hi[i] != null)));
  const cell = v => (v == null ? "" : v);
  const head = ["time", ...series.flatMap((s, i) => (banded[i] ? [s.name, s.name + "_min", s.name + "_max"] : [s.name]))];
  const lines = [head.map(csvCell).join(",")];
  for (const r of rows) {
    const values = r.v.flatMap((v, i) => (banded[i] ? [v, r.lo && r.lo[i], r.hi && r.hi[i]] : [v]));
    lines.push([new Date(r.t).toISOString(), ...values.map(cell)].map(csvCell).join(","));
  }
  return lines.join("\n") + "\n";
}

function downloadCsv(name, series, rows) {
  const url = URL.createObjectURL(new Blob([toCsv(series, rows)], { type: "text/csv" }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/// `cpu`: one value (or null) per equal slice of the last hour, oldest first. A null slice (no
/// sample in it: the host was down or not polled) breaks the line rather than joining across it
/// (issue #18); a lone value between gaps is a dot.
function sparkline(cpu) {
  const n = cpu.length;
  const vals = cpu.map((v, i) => [i, v]).filter(p => p[1] != null);
  const svg = svgEl("svg", { class: "sparkline", viewBox: "0 0 100 24", preserveAspectRatio: "none", "data-points": vals.length });
  const xs = i => (n > 1 ? (i / (n - 1)) * 100 : 50);
  const ys = v => 23 - (Math.min(100, Math.max(0, v)) / 100) * 22;
  const rows = cpu.map((v, i) => ({ t: i, v: [v] }));
  for (const run of runs(rows, r => r.v[0] != null, 1)) {
    if (run.length === 1) svg.append(svgEl("circle", { cx: xs(run[0].t), cy: ys(run[0].v[0]), r: 1.5, fill: "#1f4e79" }));
    else svg.append(svgEl("polyline", { points: run.map(r => `${xs(r.t).toFixed(1)},${ys(r.v[0]).toFixed(1)}`).join(" ") }));
  }
  if (vals.length) {
    const lo = Math.min(...vals.map(p => p[1])), hi = Math.max(...vals.map(p => p[1]));
    const t = svgEl("title");
    t.textContent = `CPU, last hour: ${lo.toFixed(1)}–${hi.toFixed(1)}%`;
    svg.append(t);
  }
  return svg;
}

// ---------- server form (add and edit) ----------

/// Opens the add/edit form over the page. `server` is null to add. Checks with the API's
/// validate endpoint first, so a bad value shows the API's own message without a failed request.
function openServerForm(server, onDone) {
  const close = () => overlay.remove();
  const field = (name, label, attrs = {}, hint) => [
    el("label", { for: "sf-" + name, text: label }),
    attrs.textarea
      ? el("textarea", { id: "sf-" + name, name, placeholder: attrs.placeholder, autocomplete: "off", spellcheck: "false" })
      : el("input", { id: "sf-" + name, name, type: "text", autocomplete: "off", spellcheck: "false", ...attrs }),
    hint ? el("div", { class: "hint", text: hint }) : null,
  ];
  const error = el("div", { id: "server-form-error", class: "form-error", role: "alert" });
  const form = el("form", { id: "server-form", class: "panel", novalidate: true },
    el("h2", { text: server ? `Edit ${server.name}` : "Add a server" }),
    el("div", { class: "form-grid" },
      field("name", "Name", { required: true }),
      field("host", "Host", { required: true, placeholder: "db1.example.org or 10.0.0.5" }),
      field("port", "Port", { inputmode: "numeric", placeholder: "22" }),
      field("user", "User", { required: true }),
      field("key_path", "Key file", { placeholder: "/home/fleetpoll/.ssh/id_ed25519" }, "A private key file on the poller's machine"),
      field("key", "Or the key", { textarea: true, placeholder: "-----BEGIN OPENSSH PRIVATE KEY-----" },
        server && server.key_stored ? "A key is stored (encrypted); paste a new one to replace it" : "Stored encrypted in the database"),
      field("tags", "Tags", { placeholder: "web, eu-west" }, "Comma separated")),
    error,
    el("div", { class: "form-actions" },
      el("button", { type: "button", class: "cancel", text: "Cancel", onclick: close }),
      el("button", { type: "submit", class: "primary", text: server ? "Save" : "Add server" })));
  const overlay = el("div", { class: "overlay" }, form);
  const input = n => form.elements.namedItem(n);
  if (server) {
    input("name").value = server.name;
    input("host").value = server.host;
    input("port").value = String(server.port);
    input("user").value = server.user;
    input("key_path").value = server.key_path || "";
    input("tags").value = (server.tags || []).join(", ");
  }
  overlay.addEventListener("keydown", ev => { if (ev.key === "Escape") close(); });
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    $$(".invalid", form).forEach(e => e.classList.remove("invalid"));
    error.textContent = "";
    const body = {};
    const text = n => input(n).value.trim();
    const port = text("port");
    const values = {
      name: text("name"), host: text("host"), user: text("user"), key_path: text("key_path"),
      // A number when it is one, else as typed, so the API names what is wrong with it.
      port: port === "" ? null : /^\d+$/.test(port) ? Number(port) : port,
      tags: text("tags").split(",").map(t => t.trim()).filter(Boolean),
    };
    if (server) {
      for (const k of ["name", "host", "user", "key_path"]) if (values[k] !== (k === "key_path" ? server.key_path || "" : server[k])) body[k] = values[k];
      if (values.port != null && values.port !== server.port) body.port = values.port;
      if (values.tags.join(",") !== (server.tags || []).join(",")) body.tags = values.tags;
    } else {
      for (const k of ["name", "host", "user"]) body[k] = values[k];
      if (values.key_path) body.key_path = values.key_path;
      if (values.port != null) body.port = values.port;
      if (values.tags.length) body.tags = values.tags;
    }
    if (input("key").value.trim()) body.key = input("key").value;
    const base = server ? `/api/servers/${server.id}` : "/api/servers";
    const submit = $("button[type=submit]", form);
    submit.disabled = true;
    try {
      const check = await api(base + "/validate", { method: "POST", body });
      if (!check.valid) {
        error.textContent = check.error;
        const f = input(check.field);
        if (f && f.classList) { f.classList.add("invalid"); f.setAttribute("aria-invalid", "true"); f.focus(); }
        return;
      }
      const saved = await api(base, { method: server ? "PATCH" : "POST", body });
      close();
      onDone(saved);
    } catch (e) {
      error.textContent = e.message;
      const f = e.body && e.body.field && input(e.body.field);
      if (f && f.classList) f.classList.add("invalid");
    } finally {
      submit.disabled = false;
    }
  });
  document.body.append(overlay);
  input("name").focus();
}

// ---------- overview ----------

const HEALTH_RANK = { critical: 0, offline: 1, warning: 2, unknown: 3, healthy: 4 };
const STATUSES = ["online", "offline", "stale", "unknown", "disabled", "host_key_changed"];
const HEALTHS = ["healthy", "warning", "critical", "offline", "unknown"];
const CARDS = [
  ["total_servers", "Servers"], ["online_servers", "Online"], ["offline_servers", "Offline"], ["stale_servers", "Stale"],
  ["total_containers", "Containers"], ["running_containers", "Running"], ["stopped_containers", "Stopped"],
  ["error_containers", "Failed"], ["avg_cpu_percent", "Avg CPU", fmtPct], ["avg_memory_percent", "Avg memory", fmtPct],
  ["avg_disk_percent", "Avg disk", fmtPct],
];
const ROW_LIMIT = 300;

/// Whether a row's CPU, memory and disk are from an older poll than its status and health speak
/// of (#18): the host is not online, its latest poll failed (health unknown with a sample), or
/// its sample missed a poll and a half. The age is the server's (`sample_age_secs`), so a viewer
/// with a wrong clock sees the same.
function valuesDated(s, intervalSecs) {
  if (s.sample_age_secs == null) return false;
  if (s.status !== "online" || s.health === "unknown") return true;
  return intervalSecs > 0 && s.sample_age_secs > 1.5 * intervalSecs;
}

function select(id, label, options, value) {
  const s = el("select", { id, "aria-label": label });
  for (const [v, text] of options) s.append(el("option", { value: v, text }));
  s.value = value || "";
  return s;
}

async function overviewPage() {
  const q = params();
  const state = {
    q: q.get("q") || "", status: q.get("status") || "", tag: q.get("tag") || "", health: q.get("health") || "",
    sort: q.get("sort") || "health", dir: q.get("dir") || "asc", all: false,
  };
  let data = null;
  // Sparklines of the rows shown, fetched for those rows only (a fleet of 10,000 shows 300).
  let sparks = new Map();
  let fetchingSparks = false;

  const text = el("input", { id: "filter-text", type: "search", placeholder: "Filter by name, host or tag", value: state.q });
  const status = select("filter-status", "Status", [["", "Any status"], ...STATUSES.map(s => [s, s.replace(/_/g, " ")])], state.status);
  const health = select("filter-health", "Health", [["", "Any health"], ...HEALTHS.map(h => [h, h])], state.health);
  const tag = select("filter-tag", "Tag", [["", "Any tag"]], state.tag);
  const shown = el("span", { id: "shown-count", class: "muted" });
  const toolbar = el("div", { class: "toolbar" }, text, status, health, tag, shown, el("span", { class: "spacer" }));
  if (canOperate()) toolbar.append(el("button", { id: "add-server", type: "button", class: "primary", text: "Add server",
    onclick: () => openServerForm(null, () => refresh()) }));
  const cols = [["name", "Server"], ["health", "Health"], ["status", "Status"], ["cpu", "CPU", "num"], ["memory", "Memory", "num"],
    ["disk", "Disk", "num"], [null, "Last hour", "hide-narrow"], ["last", "Last poll"], [null, "Reason"]];
  const thead = el("tr", {}, cols.map(([k, label, cls]) => el("th", { "data-sort": k, class: cls, text: label })));
  const tbody = el("tbody");
  const more = el("button", { type: "button", id: "show-all", hidden: true, onclick: () => { state.all = true; draw(); } });
  const cards = el("div", { id: "cards", class: "cards" });
  // Admins see the processes sharing a PostgreSQL database (#14); a lone SQLite poller has none.
  const pollerBody = el("tbody");
  const pollersSection = el("section", { id: "pollers-section", hidden: true },
    el("h2", { text: "Pollers" }),
    el("div", { class: "table-wrap" }, el("table", { id: "pollers", class: "stack-narrow" },
      el("thead", {}, el("tr", {}, ["Host", "Role", "State", "Hosts leased", "Polls / min", "Last heartbeat", "Started", "Version"]
        .map(h => el("th", { text: h })))), pollerBody)));
  $("#main").replaceChildren(el("h1", { text: "Fleet" }), cards, toolbar,
    el("div", { class: "table-wrap" }, el("table", { id: "servers", class: "stack-narrow" }, el("thead", {}, thead), tbody)), more,
    pollersSection);

  /// A poller is live (heartbeat within the lease), stopped (cleanly: its leases went back) or
  /// lost (no heartbeat and no clean stop: killed, or cut off from the database).
  function drawPollers(p) {
    pollersSection.hidden = !p || !p.total;
    if (pollersSection.hidden) return;
    const state = x => (x.live ? "live" : x.stopped_at ? "stopped" : "lost");
    const badge = { live: "healthy", stopped: "unknown", lost: "critical" };
    pollerBody.replaceChildren(...p.items.map(x => el("tr", { class: "poller-row", "data-id": x.id, "data-state": state(x) },
      el("td", { class: "hostname", text: x.hostname }),
      el("td", { class: "role", text: x.role }),
      el("td", {}, el("span", { class: "badge " + badge[state(x)], text: state(x) })),
      el("td", { class: "leased num", text: x.role === "api" ? "–" : String(x.leased_hosts) }),
      el("td", { class: "rate num", text: x.polls_per_minute == null ? "–" : x.polls_per_minute.toFixed(1) }),
      el("td", { class: "heartbeat", title: fmtTime(x.last_heartbeat), text: fmtAgo(x.last_heartbeat) }),
      el("td", { class: "started", title: fmtTime(x.started_at), text: fmtAgo(x.started_at) }),
      el("td", { class: "version", text: x.version }))));
    labelCells($("#pollers"));
  }

  const save = () => setParams({ q: state.q, status: state.status, tag: state.tag, health: state.health,
    sort: state.sort === "health" ? "" : state.sort, dir: state.dir === "asc" ? "" : state.dir });
  text.addEventListener("input", () => { state.q = text.value.trim(); save(); draw(); });
  for (const [e, k] of [[status, "status"], [health, "health"], [tag, "tag"]]) e.addEventListener("change", () => { state[k] = e.value; save(); draw(); });
  for (const th of $$("th[data-sort]", thead)) {
    if (!th.dataset.sort) { th.removeAttribute("data-sort"); continue; }
    th.tabIndex = 0;
    th.setAttribute("role", "button");
    th.addEventListener("click", () => {
      state.dir = state.sort === th.dataset.sort && state.dir === "asc" ? "desc" : "asc";
      state.sort = th.dataset.sort;
      save();
      draw();
    });
    th.addEventListener("keydown", ev => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); th.click(); } });
  }

  const sortKey = {
    name: s => s.name.toLowerCase(), health: s => HEALTH_RANK[s.health] ?? 9, status: s => s.status,
    cpu: s => s.cpu_percent ?? -1, memory: s => s.memory_percent ?? -1, disk: s => s.disk_percent ?? -1,
    last: s => (s.last_sample_at ? new Date(s.last_sample_at).getTime() : 0),
  };

  /// The servers matching the filters, sorted; and the ones drawn (the first ROW_LIMIT).
  function matching() {
    const needle = state.q.toLowerCase();
    const rows = data.servers.filter(s =>
      (!needle || s.name.toLowerCase().includes(needle) || s.host.toLowerCase().includes(needle) || s.tags.some(t => t.toLowerCase().includes(needle))) &&
      (!state.status || s.status === state.status) && (!state.health || s.health === state.health) &&
      (!state.tag || s.tags.includes(state.tag)));
    const key = sortKey[state.sort] || sortKey.health;
    const sign = state.dir === "desc" ? -1 : 1;
    rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name)) * sign; });
    return { rows, visible: state.all ? rows : rows.slice(0, ROW_LIMIT) };
  }

  function draw() {
    if (!data) return;
    cards.replaceChildren(...CARDS.map(([k, label, fmt]) =>
      el("div", { class: "card", "data-key": k }, label, el("span", { class: "value", text: fmt ? fmt(data[k]) : String(data[k] ?? "–") }))));
    // Firing alerts by severity, each card a way to the alerts page.
    const firing = data.firing_alerts || {};
    for (const sev of ["critical", "warning"]) {
      const n = firing[sev] ?? 0;
      cards.append(el("a", { class: "card firing" + (n ? " " + sev : ""), "data-key": "firing_" + sev, href: "/alerts" },
        `Firing (${sev})`, el("span", { class: "value", text: String(n) })));
    }
    const tags = [...new Set(data.servers.flatMap(s => s.tags))].sort();
    const want = state.tag;
    tag.replaceChildren(el("option", { value: "", text: "Any tag" }), ...tags.map(t => el("option", { value: t, text: t })));
    tag.value = tags.includes(want) ? want : "";
    const { rows, visible } = matching();
    for (const th of $$("th[data-sort]", thead)) {
      th.classList.toggle("sorted-asc", th.dataset.sort === state.sort && state.dir === "asc");
      th.classList.toggle("sorted-desc", th.dataset.sort === state.sort && state.dir === "desc");
    }
    const metric = (s, cls, v) => {
      const dated = valuesDated(s, data.poll_interval_secs);
      return el("td", { class: `${cls} num` + (dated ? " dated" : ""), title: dated ? `as of ${fmtAge(s.sample_age_secs)}` : null, text: fmtPct(v) });
    };
    tbody.replaceChildren(...visible.map(s => el("tr", { class: "server-row", "data-id": s.id, "data-name": s.name, "data-status": s.status, "data-health": s.health },
      el("td", {}, el("a", { class: "server-link", href: `/servers/${s.id}`, text: s.name }),
        s.alerts_firing > 0 ? [" ", el("a", { class: "badge critical firing-marker", href: `/alerts?server_id=${s.id}`,
          title: `${s.alerts_firing} alert(s) firing`, text: `${s.alerts_firing} firing` })] : null,
        el("div", { class: "muted", text: s.tags.join(", ") })),
      el("td", {}, el("span", { class: "badge " + s.health, text: s.health })),
      el("td", { class: "status", text: s.status.replace(/_/g, " ") }),
      metric(s, "cpu", s.cpu_percent),
      metric(s, "memory", s.memory_percent),
      metric(s, "disk", s.disk_percent),
      el("td", { class: "spark hide-narrow" }, sparkline(sparks.get(s.id) || [])),
      el("td", { class: "last-poll", title: fmtTime(s.last_sample_at), text: fmtAgo(s.last_sample_at) }),
      el("td", { class: "reason", text: s.reason || "" }))));
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: cols.length, class: "muted", text: data.servers.length ? "No server matches the filter." : "No servers yet." })));
    labelCells($("#servers"));
    shown.textContent = `${rows.length} of ${data.servers.length} servers`;
    more.hidden = visible.length === rows.length;
    more.textContent = `Show all ${rows.length} servers`;
    const missing = visible.map(s => s.id).filter(id => !sparks.has(id));
    if (missing.length && !fetchingSparks) loadSparks(missing).then(draw, e => banner("Could not load: " + e.message));
  }

  async function loadSparks(ids) {
    fetchingSparks = true;
    try {
      for (let i = 0; i < ids.length; i += 250) {
        const chunk = ids.slice(i, i + 250);
        const s = await api("/api/dashboard/sparklines?minutes=60&points=30&ids=" + chunk.join(","));
        for (const id of chunk) sparks.set(id, []);
        for (const it of s.items) sparks.set(it.server_id, it.cpu);
      }
    } finally {
      fetchingSparks = false;
    }
  }

  async function load() {
    let pollers;
    [data, pollers] = await Promise.all([api("/api/dashboard/summary"), isAdmin() ? api("/api/pollers") : null]);
    drawPollers(pollers);
    // Fresh sparklines for the rows to show; rows that appear later (filters) fetch theirs then.
    sparks = new Map();
    const ids = matching().visible.map(s => s.id);
    if (ids.length) await loadSparks(ids);
    draw();
  }
  const refresh = autoRefresh(load);
}

// ---------- server page ----------

// 90d and 1y come from the hourly and daily tiers (#12); an API without them answers 400, which
// shows in the banner while the charts of the period before stay.
const PERIODS = ["1h", "24h", "7d", "30d", "90d", "1y"];

/// A length of time for "1 point = ...": 6 s, 2.4 min, 1 h, 1 d.
function fmtSpan(secs) {
  const n = (v, unit) => `${+v.toFixed(1)} ${unit}`;
  return secs < 60 ? n(secs, "s") : secs < 3600 ? n(secs / 60, "min") : secs < 86400 ? n(secs / 3600, "h") : n(secs / 86400, "d");
}

/// What one point of a history answer stands for, for the line beside the range: the tier and
/// the API's `resolution_secs` when it gives them; else (an older API) the median spacing.
function resolutionText(h, times, hasBands) {
  const res = h.resolution_secs;
  const band = hasBands ? ", band = min–max" : "";
  if (h.tier === "hourly" || h.tier === "daily") {
    const own = h.tier === "hourly" ? 3600 : 86400;
    return `${h.tier} averages${res && res !== own ? `, 1 point = ${fmtSpan(res)}` : ""}${band}`;
  }
  if (res > 0) return `1 point = ${fmtSpan(res)}${band}`;
  const limit = gapLimitMs(times);
  return isFinite(limit) ? `1 point ≈ ${fmtSpan(Math.round(limit / 1.5 / 1000))}${band}` : "";
}

/// A chart row from one history point: `fields` its values, and from `min`/`max` (rollup
/// tiers only) the band around each.
function historyRow(p, fields) {
  const row = { t: new Date(p.timestamp).getTime(), v: fields.map(f => p[f] ?? null) };
  if (p.min || p.max) {
    row.lo = fields.map(f => (p.min ? p.min[f] ?? null : null));
    row.hi = fields.map(f => (p.max ? p.max[f] ?? null : null));
  }
  return row;
}

async function serverPage(id) {
  const q = params();
  const state = { period: PERIODS.includes(q.get("period")) ? q.get("period") : "1h", since: q.get("since"), until: q.get("until") };
  const validZoom = () => state.since && state.until && !isNaN(Date.parse(state.since)) && !isNaN(Date.parse(state.until));
  if (!validZoom()) { state.since = null; state.until = null; }
  const save = () => setParams({ period: state.period === "1h" ? "" : state.period, since: state.since, until: state.until });

  const title = el("span", { id: "server-name", text: "…" });
  const healthBadge = el("span", { id: "server-health", class: "badge unknown", text: "…" });
  const statusText = el("span", { id: "server-status", class: "muted" });
  const facts = el("dl", { id: "server-facts", class: "facts" });
  const actions = el("div", { class: "toolbar" });
  // The button asked for shows at once, before (and whether or not) the API answers.
  const markPeriod = () => { for (const b of $$("button", periodBox)) b.classList.toggle("active", !validZoom() && b.dataset.period === state.period); };
  const periodBox = el("div", { id: "period", class: "segmented" },
    PERIODS.map(p => el("button", { type: "button", "data-period": p, text: p,
      onclick: () => { state.period = p; state.since = state.until = null; save(); markPeriod(); refresh(); } })));
  const resetZoom = el("button", { id: "reset-zoom", type: "button", text: "Reset zoom", hidden: true,
    onclick: () => { state.since = state.until = null; save(); refresh(); } });
  const rangeText = el("span", { class: "muted", id: "range" });
  const resolutionNote = el("span", { class: "muted", id: "resolution" });
  const charts = el("div", { class: "charts", id: "charts" });
  const containerBody = el("tbody");
  const containerCharts = el("div", { class: "charts", id: "container-charts" });
  // The API pages containers (a host may run thousands); 500 a page here.
  const CONTAINER_PAGE = 500;
  let containerOffset = 0;
  const containerPager = el("p", { class: "muted", id: "container-pager", hidden: true });
  const containersSection = el("section", { id: "containers-section" },
    el("h2", { text: "Containers" }),
    el("div", { class: "table-wrap" }, el("table", { id: "containers", class: "stack-narrow" },
      el("thead", {}, el("tr", {}, ["Name", "State", "CPU", "Memory (used / limit)", "Net I/O (rx / tx)", "Block I/O (read / write)", "PIDs", "Image"]
        .map(h => el("th", { text: h })))), containerBody)),
    containerPager,
    el("h3", { class: "muted", text: "Per container" }), containerCharts);
  $("#main").replaceChildren(el("h1", {}, title, healthBadge, statusText), facts, actions,
    el("div", { class: "toolbar" }, periodBox, resetZoom, rangeText, resolutionNote), charts, containersSection);

  const zoomTo = (a, b) => {
    state.since = new Date(a).toISOString();
    state.until = new Date(b).toISOString();
    save();
    refresh();
  };
  let server = null;

  function drawFacts(s, summary) {
    document.title = `${s.name} – fleetpoll`;
    title.textContent = s.name;
    healthBadge.className = "badge " + summary.health;
    healthBadge.textContent = summary.health;
    statusText.textContent = s.status.replace(/_/g, " ") + (s.enabled ? "" : " (disabled)");
    const p = s.platform || {};
    // procps's version already names it ("procps-ng 4.0.2"): no "procps procps-ng 4.0.2".
    const tool = t => (!t || !t.kind ? "–" : !t.version ? t.kind : t.version.startsWith(t.kind) ? t.version : `${t.kind} ${t.version}`);
    const engine = p.engine ? `${p.engine.kind} ${p.engine.server || p.engine.client || ""} (${p.engine.access})` : "none found";
    const platform = s.platform
      ? `${p.os || "?"}, kernel ${p.kernel || "?"}, ${p.arch || "?"}, ${p.cpus ?? "?"} CPUs; top: ${tool(p.top)}, df: ${tool(p.df)}; containers: ${engine}`
      : "not probed yet";
    const hostKey = s.host_key_fingerprint
      ? s.host_key_fingerprint + (s.pending_host_key_fingerprint ? ` (changed to ${s.pending_host_key_fingerprint}; not trusted)` : "")
      : "not pinned yet (trusted on first connection)";
    const rows = [
      ["host", "Address", `${s.host}:${s.port}`], ["user", "User", s.user],
      ["key", "Client key", s.key_stored ? `stored, ${s.key_fingerprint || ""}` : `${s.key_path || "–"}${s.key_fingerprint ? ", " + s.key_fingerprint : ""}`],
      ["platform", "Platform", platform], ["host_key", "Host key", hostKey], ["tags", "Tags", s.tags.join(", ") || "–"],
      ["last_sample", "Last sample", s.last_sample_at ? `${fmtTime(s.last_sample_at)} (${fmtAgo(s.last_sample_at)})` : "never"],
      ["uptime", "Uptime", fmtDuration(summary.uptime)],
      ["reason", "Last failure", s.reason || "–"],
    ];
    facts.replaceChildren(...rows.flatMap(([k, label, v]) => [el("dt", { text: label }), el("dd", { "data-fact": k, text: v })]));
  }

  function drawActions(s) {
    if (!canOperate()) return actions.replaceChildren();
    const confirmBox = el("span", { class: "confirm", hidden: true },
      `Remove ${s.name} and all its samples?`,
      el("button", { id: "confirm-remove", type: "button", class: "danger", text: "Remove", onclick: async () => {
        try { await api(`/api/servers/${s.id}`, { method: "DELETE" }); location.href = "/"; } catch (e) { banner(e.message); }
      } }),
      el("button", { type: "button", text: "Keep", onclick: () => { confirmBox.hidden = true; } }));
    const buttons = [
      el("button", { id: "edit-server", type: "button", text: "Edit", onclick: () => openServerForm(s, () => refresh()) }),
      el("button", { id: "remove-server", type: "button", class: "danger", text: "Remove", onclick: () => { confirmBox.hidden = false; } }),
    ];
    if (s.status === "host_key_changed" || s.pending_host_key_fingerprint) {
      buttons.push(el("button", { id: "trust-key", type: "button", text: "Trust the new host key", title: s.pending_host_key_fingerprint || "",
        onclick: async () => { try { await api(`/api/servers/${s.id}/trust`, { method: "POST" }); refresh(); } catch (e) { banner(e.message); } } }));
    }
    actions.replaceChildren(...buttons, confirmBox);
  }

  const pctSeries = (name, label) => ({ name, label, unit: "pct", fmt: v => v.toFixed(1) + "%" });
  const bytesSeries = (name, label, axis) => ({ name, label, axis, unit: "bytes", fmt: fmtBytes });
  const numSeries = (name, label) => ({ name, label, fmt: v => v.toFixed(2) });

  async function load() {
    const range = validZoom() ? `since=${encodeURIComponent(state.since)}&until=${encodeURIComponent(state.until)}` : `period=${state.period}`;
    const points = Math.max(60, Math.min(600, Math.round((charts.clientWidth || 1200) / 2)));
    const [s, metrics, disks, containers] = await Promise.all([
      api(`/api/servers/${id}`),
      api(`/api/servers/${id}/metrics?${range}&points=${points}`),
      api(`/api/servers/${id}/disks/history?${range}&points=${points}`),
      api(`/api/servers/${id}/containers?limit=${CONTAINER_PAGE}&offset=${containerOffset}`),
    ]);
    server = s;
    const last = metrics.items[metrics.items.length - 1];
    drawFacts(s, { health: s.health || "unknown", uptime: last ? last.uptime_seconds : null });
    drawActions(s);
    markPeriod();
    resetZoom.hidden = !validZoom();
    rangeText.textContent = `${fmtTime(metrics.since)} – ${fmtTime(metrics.until)}`;

    const base = `fleetpoll-${s.name}`;
    const spanOf = h => [Date.parse(h.since), Date.parse(h.until)];
    const chartOf = (key, title, series, fields, yMax) => lineChart({
      key, title, series, yMax, onZoom: zoomTo, exportName: `${base}-${key}.csv`, domain: spanOf(metrics),
      resolution: metrics.resolution_secs, rows: metrics.items.map(p => historyRow(p, fields)),
    });
    // One row per time point across mounts: every mount is sampled by the same poll.
    const mounts = disks.mounts.map(d => d.mount);
    const byTime = new Map();
    disks.mounts.forEach((d, i) => {
      for (const p of d.points) {
        const one = historyRow(p, ["use_percent"]);
        if (!byTime.has(one.t)) byTime.set(one.t, { t: one.t, v: mounts.map(() => null) });
        const row = byTime.get(one.t);
        row.v[i] = one.v[0];
        if (one.lo) {
          row.lo = row.lo || mounts.map(() => null);
          row.hi = row.hi || mounts.map(() => null);
          row.lo[i] = one.lo[0];
          row.hi[i] = one.hi[0];
        }
      }
    });
    const diskRows = [...byTime.values()].sort((a, b) => a.t - b.t);
    resolutionNote.textContent = resolutionText(metrics, metrics.items.map(p => Date.parse(p.timestamp)), metrics.items.some(p => p.min || p.max));
    resolutionNote.dataset.tier = metrics.tier || "";
    resolutionNote.dataset.resolution = metrics.resolution_secs ?? "";
    // A host without swap (#18): total 0 or unknown, nothing used, throughout the range.
    const noSwap = metrics.items.length > 0 &&
      metrics.items.every(p => !p.swap_total_bytes && !p.swap_used_bytes && !(p.max && (p.max.swap_used_bytes || p.max.swap_total_bytes)));
    charts.replaceChildren(
      chartOf("cpu", "CPU", [pctSeries("cpu_percent", "busy")], ["cpu_busy_percent"], 100),
      chartOf("memory", "Memory", [pctSeries("memory_percent", "used")], ["memory_percent"], 100),
      noSwap ? noteChart({ key: "swap", title: "Swap", note: "no swap" })
        : chartOf("swap", "Swap", [bytesSeries("swap_used_bytes", "used")], ["swap_used_bytes"]),
      chartOf("load", "Load", [numSeries("load1", "1 min"), numSeries("load5", "5 min"), numSeries("load15", "15 min")], ["load1", "load5", "load15"]),
      lineChart({ key: "disk", title: "Disk use", series: mounts.map(mt => pctSeries(mt, mt)), rows: diskRows, yMax: 100, domain: spanOf(disks),
        resolution: disks.resolution_secs, onZoom: zoomTo, exportName: `${base}-disk.csv` }));

    containerBody.replaceChildren(...containers.items.map(c => el("tr", { class: "container-row", "data-name": c.name },
      el("td", { text: c.name }),
      el("td", { class: "state" }, el("span", { class: "badge " + (c.category === "running" ? "healthy" : c.category === "error" ? "critical" : "offline"), text: c.state }),
        " ", el("span", { class: "muted", text: c.status_text })),
      el("td", { class: "cpu num", text: fmtPct(c.cpu_percent) }),
      el("td", { class: "mem num", text: `${fmtBytes(c.mem_used_bytes)} / ${c.mem_limit_bytes ? fmtBytes(c.mem_limit_bytes) : "no limit"}` }),
      el("td", { class: "net num", text: `${fmtBytes(c.net_rx_bytes)} / ${fmtBytes(c.net_tx_bytes)}` }),
      el("td", { class: "block num", text: `${fmtBytes(c.block_read_bytes)} / ${fmtBytes(c.block_write_bytes)}` }),
      el("td", { class: "pids num", text: c.pids == null ? "–" : String(c.pids) }),
      el("td", { class: "image", text: c.image || "" }))));
    labelCells($("#containers"));
    containersSection.hidden = !containers.total;
    containerPager.hidden = containers.total <= containers.items.length;
    if (!containerPager.hidden) {
      const page = delta => el("button", { type: "button", text: delta < 0 ? "Previous" : "Next",
        onclick: () => { containerOffset = Math.max(0, containerOffset + delta * CONTAINER_PAGE); refresh(); } });
      const parts = [`Containers ${containers.offset + 1}–${containers.offset + containers.items.length} of ${containers.total} `];
      if (containers.offset > 0) parts.push(page(-1));
      if (containers.offset + containers.items.length < containers.total) parts.push(" ", page(1));
      containerPager.replaceChildren(...parts);
    }
    const shownContainers = containers.items.slice(0, 24);
    const histories = await Promise.all(shownContainers.map(c =>
      api(`/api/servers/${id}/containers/${encodeURIComponent(c.name)}/metrics?${range}&points=${Math.min(points, 300)}`)));
    containerCharts.replaceChildren(...histories.map((h, i) => lineChart({
      key: "container:" + shownContainers[i].name, title: shownContainers[i].name,
      series: [pctSeries("cpu_percent", "CPU"), bytesSeries("mem_used_bytes", "memory", "right")],
      rows: h.items.map(p => historyRow(p, ["cpu_percent", "mem_used_bytes"])), domain: spanOf(h), resolution: h.resolution_secs,
      onZoom: zoomTo, exportName: `${base}-container-${shownContainers[i].name}.csv`,
    })));
    if (containers.items.length > shownContainers.length) containerCharts.append(el("p", { class: "muted", text: `Charts for the first ${shownContainers.length} of ${containers.items.length} containers.` }));
  }
  const refresh = autoRefresh(load);
}

// ---------- activity ----------

const PAGE_SIZE = 50;

/// `datetime-local` value (viewer's zone) <-> RFC 3339 UTC.
function localInput(iso) {
  if (!iso || isNaN(Date.parse(iso))) return "";
  const d = new Date(iso);
  const p = n => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
const fromLocalInput = v => (v ? new Date(v).toISOString() : "");
/// "To 14:05" means up to the end of that minute.
const untilLocalInput = v => (v ? new Date(new Date(v).getTime() + 59999).toISOString() : "");

/// The entry's details (what changed, from where) for an auditor, folded away; none when empty.
function detailsOf(a) {
  const d = a.details;
  if (!d || typeof d !== "object" || !Object.keys(d).length) return null;
  return el("details", { class: "details" }, el("summary", { text: "details" }), el("pre", { text: JSON.stringify(d, null, 2) }));
}

async function activityPage() {
  const keys = ["type", "server_id", "actor", "severity", "since", "until"];
  const q = params();
  const state = Object.fromEntries(keys.map(k => [k, q.get(k) || ""]));
  state.offset = Math.max(0, parseInt(q.get("offset") || "0", 10) || 0);

  const fType = select("f-type", "Type", [["", "Any type"]], state.type);
  const fServer = select("f-server", "Server", [["", "Any server"]], state.server_id);
  const fActor = el("input", { id: "f-actor", type: "text", placeholder: "user:alice, system, cli:root", value: state.actor });
  const fSeverity = select("f-severity", "Severity", [["", "Any severity"], ["info", "info"], ["warning", "warning"], ["critical", "critical"]], state.severity);
  const fSince = el("input", { id: "f-since", type: "datetime-local", value: localInput(state.since) });
  const fUntil = el("input", { id: "f-until", type: "datetime-local", value: localInput(state.until) });
  const lab = (text, input) => el("label", {}, text, input);
  const form = el("form", { id: "activity-filters", class: "filters" },
    lab("Type", fType), lab("Server", fServer), lab("Actor", fActor), lab("Severity", fSeverity),
    lab("From", fSince), lab("To", fUntil),
    el("button", { type: "submit", class: "primary", text: "Apply" }),
    el("button", { id: "f-reset", type: "button", text: "Reset" }));
  const tbody = el("tbody");
  const info = el("span", { id: "page-info", class: "muted" });
  const prev = el("button", { id: "page-prev", type: "button", text: "‹ Newer" });
  const next = el("button", { id: "page-next", type: "button", text: "Older ›" });
  const csv = el("a", { id: "activity-csv", href: "/api/activity?format=csv", download: "fleetpoll-activity.csv", text: "Export CSV" });
  $("#main").replaceChildren(el("h1", { text: "Activity" }), form,
    el("div", { class: "pager" }, prev, next, info, el("span", { class: "spacer" }), csv),
    el("div", { class: "table-wrap" }, el("table", { id: "activity", class: "stack-narrow" },
      el("thead", {}, el("tr", {}, ["Time", "Severity", "Type", "Actor", "Server", "Message"].map(h => el("th", { text: h })))), tbody)));

  const filterQuery = () => {
    const p = new URLSearchParams();
    for (const k of keys) if (state[k]) p.set(k, state[k]);
    return p;
  };
  const save = () => setParams({ ...Object.fromEntries(filterQuery()), offset: state.offset || "" });
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    Object.assign(state, {
      type: fType.value, server_id: fServer.value, actor: fActor.value.trim(), severity: fSeverity.value,
      since: fromLocalInput(fSince.value), until: untilLocalInput(fUntil.value), offset: 0,
    });
    save();
    refresh();
  });
  $("#f-reset").addEventListener("click", () => {
    for (const k of keys) state[k] = "";
    state.offset = 0;
    fType.value = fServer.value = fSeverity.value = "";
    fActor.value = fSince.value = fUntil.value = "";
    save();
    refresh();
  });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); save(); refresh(); });
  next.addEventListener("click", () => { state.offset += PAGE_SIZE; save(); refresh(); });

  let optionsLoaded = false;
  async function loadOptions() {
    const [types, servers] = await Promise.all([api("/api/activity/types"), api("/api/servers")]);
    const keepType = state.type, keepServer = state.server_id;
    const typeList = types.items.includes(keepType) || !keepType ? types.items : [...types.items, keepType];
    fType.replaceChildren(el("option", { value: "", text: "Any type" }), ...typeList.map(t => el("option", { value: t, text: t.replace(/_/g, " ") })));
    fType.value = keepType;
    fServer.replaceChildren(el("option", { value: "", text: "Any server" }),
      ...servers.items.sort((a, b) => a.name.localeCompare(b.name)).map(s => el("option", { value: s.id, text: s.name })));
    fServer.value = keepServer;
    optionsLoaded = true;
  }

  async function load() {
    if (!optionsLoaded) await loadOptions();
    const p = filterQuery();
    p.set("limit", PAGE_SIZE);
    p.set("offset", state.offset);
    const d = await api("/api/activity?" + p.toString());
    tbody.replaceChildren(...d.items.map(a => el("tr", { class: "activity-row", "data-id": a.id, "data-type": a.type, "data-severity": a.severity },
      el("td", { class: "time", title: a.timestamp, text: fmtTime(a.timestamp) }),
      el("td", { class: "severity" }, el("span", { class: "badge " + a.severity, text: a.severity })),
      el("td", { class: "type", text: a.type }),
      el("td", { class: "actor", text: a.actor + (a.details && a.details.source ? ` (${a.details.source})` : "") }),
      el("td", { class: "server" }, a.server_id && a.server_name ? el("a", { href: `/servers/${a.server_id}`, text: a.server_name }) : (a.server_name || "")),
      el("td", { class: "message" }, a.message, detailsOf(a)))));
    if (!d.items.length) tbody.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No activity matches the filter." })));
    labelCells($("#activity"));
    const from = d.total ? d.offset + 1 : 0;
    info.textContent = `${from}–${d.offset + d.items.length} of ${d.total}`;
    prev.disabled = d.offset === 0;
    next.disabled = d.offset + d.items.length >= d.total;
    csv.href = "/api/activity?" + new URLSearchParams([["format", "csv"], ...filterQuery()]).toString();
  }
  const refresh = autoRefresh(load);
}

// ---------- alerts ----------

const HISTORY_SIZE = 50;
const METRICS = ["cpu_percent", "memory_percent", "swap_percent", "load1_per_core", "disk_percent",
  "container_cpu_percent", "container_memory_percent", "container_state", "server_status", "uptime_seconds", "poll_problem"];
const PER_MOUNT = ["disk_percent"];
const PER_CONTAINER = ["container_cpu_percent", "container_memory_percent", "container_state"];
/// The words a textual metric compares with (as the API's rule validation has them).
const WORDS = {
  container_state: ["running", "exited", "restarting", "paused", "created", "dead", "unhealthy"],
  server_status: ["online", "offline", "host_key_changed"],
};
const OPS = [">", ">=", "<", "<=", "==", "!="];
const SILENCE_LENGTHS = [["1h", "1 hour", 3600], ["2h", "2 hours", 7200], ["4h", "4 hours", 14400], ["8h", "8 hours", 28800],
  ["24h", "1 day", 86400], ["3d", "3 days", 259200], ["7d", "7 days", 604800]];
/// A channel kind's config fields: [key, label, sealed, hint]; the API names a bad one `config.<key>`.
const CHANNEL_KINDS = {
  webhook: [["url", "URL", true], ["secret", "Signing secret", true, "Optional: signs each body (X-Fleetpoll-Signature)"]],
  slack: [["url", "Webhook URL", true, "Incoming webhook (Mattermost and Rocket.Chat too)"]],
  discord: [["url", "Webhook URL", true]],
  teams: [["url", "Workflows webhook URL", true]],
  telegram: [["bot_token", "Bot token", true], ["chat_id", "Chat id"], ["base_url", "API URL", false, "Default: the public Telegram API (api.telegram.org)"]],
  ntfy: [["topic", "Topic"], ["token", "Token", true, "Optional"], ["base_url", "Server URL", false, "Default: ntfy.sh"]],
  gotify: [["base_url", "Server URL"], ["token", "App token", true]],
  pushover: [["token", "App token", true], ["user_key", "User key", true], ["base_url", "API URL", false, "Default: api.pushover.net"]],
  matrix: [["base_url", "Homeserver URL"], ["room_id", "Room id"], ["access_token", "Access token", true]],
  email: [["host", "SMTP host"], ["port", "Port", false, "Default 25, 587 or 465 by TLS mode"], ["tls", "TLS", false, "none, starttls (default) or tls"],
    ["user", "User"], ["password", "Password", true], ["from", "From"], ["to", "To", false, "Comma separated"]],
};

const isAdmin = () => ME.role === "admin";

function fmtValue(v, metric) {
  if (v == null) return "–";
  if (typeof v !== "number") return String(v);
  if (/_percent$/.test(metric || "")) return fmtPct(v);
  if (metric === "uptime_seconds") return fmtDuration(v);
  return fmtNum(v, Number.isInteger(v) ? 0 : 2);
}

/// "> 90 on /", "== exited on web-*": a rule's condition in a line.
function ruleCondition(r) {
  const where = PER_MOUNT.includes(r.metric) ? r.mount : PER_CONTAINER.includes(r.metric) ? r.container : "";
  return `${r.op} ${r.threshold}` + (r.clear_threshold != null ? ` (clears past ${r.clear_threshold})` : "") + (where && where !== "*" ? ` on ${where}` : "");
}

function scopeText(s) {
  const parts = [];
  if (s && s.tags && s.tags.length) parts.push("tags " + s.tags.join(", "));
  if (s && s.servers && s.servers.length) parts.push("servers " + s.servers.join(", "));
  return parts.join("; ") || "whole fleet";
}

const list = v => String(v || "").split(",").map(t => t.trim()).filter(Boolean);

/// An overlay panel holding `form`; Escape or Cancel closes it.
function overlayForm(form, focus) {
  const overlay = el("div", { class: "overlay" }, form);
  overlay.addEventListener("keydown", ev => { if (ev.key === "Escape") overlay.remove(); });
  document.body.append(overlay);
  if (focus) focus.focus();
  return () => overlay.remove();
}

/// Shows an error under a form and marks the input the API named (`field`) as invalid.
function showFieldError(form, errorBox, message, field, inputFor) {
  errorBox.textContent = message;
  const f = field && inputFor(field);
  if (f && f.classList) {
    f.classList.add("invalid");
    f.setAttribute("aria-invalid", "true");
    // The message next to the field too, as well as under the form.
    f.after(el("div", { class: "hint field-error", role: "alert", text: message }));
    f.focus();
  }
}

function clearFieldErrors(form, errorBox) {
  $$(".field-error", form).forEach(e => e.remove());
  $$(".invalid", form).forEach(e => { e.classList.remove("invalid"); e.removeAttribute("aria-invalid"); });
  errorBox.textContent = "";
}

/// Asks for an optional comment, then acknowledges the alert.
function openAckForm(a, onDone) {
  const comment = el("textarea", { id: "ack-comment", name: "comment", placeholder: "Looking into it; disk cleanup running" });
  const error = el("div", { id: "ack-form-error", class: "form-error", role: "alert" });
  const form = el("form", { id: "ack-form", class: "panel", novalidate: true },
    el("h2", { text: "Acknowledge" }),
    el("p", { class: "muted", text: `${a.rule} on ${a.server_name}${a.subject ? " (" + a.subject + ")" : ""}: no more repeats until it resolves.` }),
    el("div", { class: "form-grid" }, el("label", { for: "ack-comment", text: "Comment" }), comment),
    error,
    el("div", { class: "form-actions" },
      el("button", { type: "button", class: "cancel", text: "Cancel", onclick: () => close() }),
      el("button", { type: "submit", class: "primary", text: "Acknowledge" })));
  const close = overlayForm(form, comment);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const text = comment.value.trim();
    try {
      await api(`/api/alerts/${a.id}/ack`, { method: "POST", body: text ? { comment: text } : {} });
      close();
      onDone();
    } catch (e) { error.textContent = e.message; }
  });
}

/// A silence form, prefilled with `pre` ({rule, server, tag}); the comment is required.
function openSilenceForm(pre, onDone) {
  const input = (name, label, value, placeholder) => [el("label", { for: "sil-" + name, text: label }),
    el("input", { id: "sil-" + name, name, type: "text", autocomplete: "off", value: value || "", placeholder })];
  const duration = select("sil-duration", "Duration", SILENCE_LENGTHS.map(([v, t]) => [v, t]), "2h");
  duration.name = "duration";
  const comment = el("textarea", { id: "sil-comment", name: "comment", placeholder: "Why, and who to ask" });
  const error = el("div", { id: "silence-form-error", class: "form-error", role: "alert" });
  const form = el("form", { id: "silence-form", class: "panel", novalidate: true },
    el("h2", { text: "Silence" }),
    el("p", { class: "muted", text: "Alerts matching every field given still change state but notify no one. Leave a field empty to match any." }),
    el("div", { class: "form-grid" },
      input("rule", "Rule", pre.rule, "any rule"), input("server", "Server", pre.server, "any server"), input("tag", "Tag", pre.tag, "any tag"),
      el("label", { for: "sil-duration", text: "For" }), duration,
      el("label", { for: "sil-comment", text: "Comment" }), comment),
    error,
    el("div", { class: "form-actions" },
      el("button", { type: "button", class: "cancel", text: "Cancel", onclick: () => close() }),
      el("button", { type: "submit", class: "primary", text: "Silence" })));
  const close = overlayForm(form, comment);
  const field = n => form.elements.namedItem(n);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    clearFieldErrors(form, error);
    const body = { comment: comment.value.trim() };
    for (const k of ["rule", "server", "tag"]) if (field(k).value.trim()) body[k] = field(k).value.trim();
    // Asked here rather than by the API: a refused request would be a failed load in the console.
    if (!body.comment) return showFieldError(form, error, "comment: is required: say why, for whoever finds it", "comment", field);
    const secs = (SILENCE_LENGTHS.find(l => l[0] === duration.value) || SILENCE_LENGTHS[1])[2];
    body.ends_at = new Date(Date.now() + secs * 1000).toISOString();
    try {
      await api("/api/silences", { method: "POST", body });
      close();
      onDone();
    } catch (e) { showFieldError(form, error, e.message, e.body && e.body.field, field); }
  });
}

/// The add/edit rule form: the metric chosen decides which fields show. Asks the API's validate
/// endpoint first, so a bad value shows the API's own message next to the field.
function openRuleForm(rule, onDone) {
  const row = (name, label, control, hint) => el("div", { class: "form-row", "data-field": name },
    el("label", { for: "rf-" + name, text: label }), control, hint ? el("div", { class: "hint", text: hint }) : null);
  const text = (name, attrs = {}) => el("input", { id: "rf-" + name, name, type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
  const sel = (name, options) => { const s = el("select", { id: "rf-" + name, name }); for (const [v, t] of options) s.append(el("option", { value: v, text: t })); return s; };
  const check = name => el("input", { id: "rf-" + name, name, type: "checkbox" });
  const metric = sel("metric", METRICS.map(m => [m, m.replace(/_/g, " ")]));
  const op = sel("op", OPS.map(o => [o, o]));
  const threshold = text("threshold", { inputmode: "decimal", placeholder: "90" });
  const word = sel("threshold_word", []);
  const error = el("div", { id: "rule-form-error", class: "form-error", role: "alert" });
  const form = el("form", { id: "rule-form", class: "panel", novalidate: true },
    el("h2", { text: rule ? `Edit ${rule.name}` : "Add an alert rule" }),
    el("div", { class: "form-grid rule-grid" },
      row("name", "Name", text("name", { required: true })),
      row("metric", "Metric", metric),
      row("op", "Condition", op),
      row("threshold", "Threshold", threshold),
      row("threshold_word", "Value", word),
      row("clear_threshold", "Clears past", text("clear_threshold", { inputmode: "decimal" }), "Optional: a firing alert clears only past this"),
      row("mount", "Mounts", text("mount", { placeholder: "*" }), "A glob: /, /var*, *"),
      row("container", "Containers", text("container", { placeholder: "*" }), "A glob: web-*, *"),
      row("for_secs", "For (seconds)", text("for_secs", { inputmode: "numeric", placeholder: "0" }), "How long it must hold before it fires"),
      row("severity", "Severity", sel("severity", [["warning", "warning"], ["critical", "critical"]])),
      row("scope_tags", "Tags", text("scope_tags", { placeholder: "prod, web" }), "Comma separated; with servers empty too, the whole fleet"),
      row("scope_servers", "Servers", text("scope_servers", { placeholder: "web-1, db-1" })),
      row("channels", "Channels", text("channels", { placeholder: "ops-webhook" }), "Names of notification channels, comma separated"),
      row("repeat_secs", "Repeat (seconds)", text("repeat_secs", { inputmode: "numeric", placeholder: "0" }), "Re-notify while firing and unacknowledged; 0 = never"),
      row("notify_resolved", "Tell when resolved", check("notify_resolved")),
      row("enabled", "Enabled", check("enabled"))),
    error,
    el("div", { class: "form-actions" },
      el("button", { type: "button", class: "cancel", text: "Cancel", onclick: () => close() }),
      el("button", { type: "submit", class: "primary", text: rule ? "Save" : "Add rule" })));
  const input = n => form.elements.namedItem(n);
  const shown = () => {
    const m = metric.value;
    const words = WORDS[m];
    $("[data-field=threshold]", form).hidden = !!words;
    $("[data-field=threshold_word]", form).hidden = !words;
    $("[data-field=clear_threshold]", form).hidden = !!words;
    $("[data-field=mount]", form).hidden = !PER_MOUNT.includes(m);
    $("[data-field=container]", form).hidden = !PER_CONTAINER.includes(m);
    if (words) {
      const keep = word.value;
      word.replaceChildren(...words.map(w => el("option", { value: w, text: w.replace(/_/g, " ") })));
      if (words.includes(keep)) word.value = keep;
      // Words compare with == or != only; the comparison given up comes back with a number.
      for (const o of op.options) o.disabled = !["==", "!="].includes(o.value);
      if (!["==", "!="].includes(op.value)) { forcedFrom = op.value; op.value = "=="; }
    } else {
      for (const o of op.options) o.disabled = false;
      if (forcedFrom && op.value === "==") op.value = forcedFrom;
      forcedFrom = null;
    }
  };
  let forcedFrom = null;
  metric.addEventListener("change", shown);
  const r = rule || { metric: "cpu_percent", op: ">", severity: "warning", notify_resolved: true, enabled: true, mount: "*", container: "*", scope: {}, channels: [] };
  input("name").value = r.name || "";
  metric.value = r.metric;
  op.value = r.op;
  input("severity").value = r.severity;
  input("notify_resolved").checked = !!r.notify_resolved;
  input("enabled").checked = !!r.enabled;
  if (rule) {
    input("for_secs").value = String(r.for_secs);
    input("repeat_secs").value = String(r.repeat_secs);
    input("mount").value = r.mount;
    input("container").value = r.container;
    input("clear_threshold").value = r.clear_threshold == null ? "" : String(r.clear_threshold);
    input("scope_tags").value = (r.scope.tags || []).join(", ");
    input("scope_servers").value = (r.scope.servers || []).join(", ");
    input("channels").value = r.channels.join(", ");
  }
  shown();
  if (rule) { if (WORDS[r.metric]) word.value = String(r.threshold); else threshold.value = String(r.threshold); }
  const close = overlayForm(form, input("name"));

  // The API's field -> the input to mark.
  const inputFor = f => (f === "scope" ? input("scope_tags") : f === "threshold" && WORDS[metric.value] ? word : input(f));
  // A number when it is one, else as typed, so the API names what is wrong with it.
  const numberOr = v => (v === "" ? null : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    clearFieldErrors(form, error);
    const m = metric.value;
    const val = n => input(n).value.trim();
    const body = {
      name: val("name"), metric: m, op: op.value, severity: input("severity").value,
      threshold: WORDS[m] ? word.value : numberOr(val("threshold")),
      // Per-mount and per-container globs only mean something for their metrics; "*" elsewhere.
      mount: PER_MOUNT.includes(m) ? val("mount") || "*" : "*",
      container: PER_CONTAINER.includes(m) ? val("container") || "*" : "*",
      scope: { tags: list(val("scope_tags")), servers: list(val("scope_servers")) },
      channels: list(val("channels")),
      notify_resolved: input("notify_resolved").checked, enabled: input("enabled").checked,
    };
    if (body.threshold == null) delete body.threshold;
    if (!WORDS[m]) body.clear_threshold = numberOr(val("clear_threshold"));
    else if (rule && rule.clear_threshold != null) body.clear_threshold = null;
    for (const k of ["for_secs", "repeat_secs"]) { const v = numberOr(val(k)); if (v != null) body[k] = v; }
    const base = rule ? `/api/alert-rules/${rule.id}` : "/api/alert-rules";
    const submit = $("button[type=submit]", form);
    submit.disabled = true;
    try {
      const verdict = await api(base + "/validate", { method: "POST", body });
      if (!verdict.valid) return showFieldError(form, error, verdict.error, verdict.field, inputFor);
      await api(base, { method: rule ? "PATCH" : "POST", body });
      close();
      onDone();
    } catch (e) {
      showFieldError(form, error, e.message, e.body && e.body.field, inputFor);
    } finally {
      submit.disabled = false;
    }
  });
}

/// The add/edit channel form (admins): the kind decides the config fields. Sealed values come
/// back from the API as `[sealed]` (or a shortened URL); sending them back keeps the stored one.
function openChannelForm(channel, onDone) {
  const kind = el("select", { id: "cf-kind", name: "kind", "aria-label": "Kind" });
  for (const k of Object.keys(CHANNEL_KINDS)) kind.append(el("option", { value: k, text: k }));
  kind.value = channel ? channel.kind : "webhook";
  kind.disabled = !!channel;
  const name = el("input", { id: "cf-name", name: "name", type: "text", autocomplete: "off" });
  const enabled = el("input", { id: "cf-enabled", name: "enabled", type: "checkbox" });
  const config = el("div", { id: "cf-config", class: "form-grid" });
  const error = el("div", { id: "channel-form-error", class: "form-error", role: "alert" });
  const form = el("form", { id: "channel-form", class: "panel", novalidate: true },
    el("h2", { text: channel ? `Edit ${channel.name}` : "Add a notification channel" }),
    el("div", { class: "form-grid" },
      el("label", { for: "cf-name", text: "Name" }), name,
      el("label", { for: "cf-kind", text: "Kind" }), kind,
      el("label", { for: "cf-enabled", text: "Enabled" }), enabled),
    config, error,
    el("div", { class: "form-actions" },
      el("button", { type: "button", class: "cancel", text: "Cancel", onclick: () => close() }),
      el("button", { type: "submit", class: "primary", text: channel ? "Save" : "Add channel" })));
  name.value = channel ? channel.name : "";
  enabled.checked = channel ? channel.enabled : true;
  const drawConfig = () => {
    const given = channel ? channel.config || {} : {};
    config.replaceChildren(...CHANNEL_KINDS[kind.value].flatMap(([key, label, sealed, hint]) => {
      const v = given[key];
      return [el("label", { for: "cf-config-" + key, text: label }),
        el("input", { id: "cf-config-" + key, name: "config." + key, type: sealed && key !== "url" ? "password" : "text", autocomplete: "off", spellcheck: "false",
          value: v == null ? "" : Array.isArray(v) ? v.join(", ") : String(v) }),
        hint || (sealed && channel) ? el("div", { class: "hint", text: [hint, sealed && channel ? "Stored sealed; leave as shown to keep it" : ""].filter(Boolean).join(". ") }) : null];
    }));
  };
  kind.addEventListener("change", drawConfig);
  drawConfig();
  const close = overlayForm(form, name);
  const inputFor = f => form.elements.namedItem(f) || (f === "config" ? $("input", config) : null);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    clearFieldErrors(form, error);
    const cfg = {};
    for (const [key] of CHANNEL_KINDS[kind.value]) {
      const v = form.elements.namedItem("config." + key).value.trim();
      if (v === "") continue;
      cfg[key] = key === "port" && /^\d+$/.test(v) ? Number(v) : v;
    }
    const body = { name: name.value.trim(), enabled: enabled.checked, config: cfg };
    if (!channel) body.kind = kind.value;
    try {
      await api(channel ? `/api/notification-channels/${channel.id}` : "/api/notification-channels", { method: channel ? "PATCH" : "POST", body });
      close();
      onDone();
    } catch (e) { showFieldError(form, error, e.message, e.body && e.body.field, inputFor); }
  });
}

/// A "Delete?" confirmation in place of a button.
function confirmButton(label, question, cls, action) {
  const box = el("span", { class: "confirm", hidden: true }, question,
    el("button", { type: "button", class: "danger confirm-yes", text: label, onclick: action }),
    el("button", { type: "button", text: "Keep", onclick: () => { box.hidden = true; btn.hidden = false; } }));
  const btn = el("button", { type: "button", class: "danger " + cls, text: label, onclick: () => { box.hidden = false; btn.hidden = true; } });
  return [btn, box];
}

async function alertsPage() {
  const q = params();
  const state = { server_id: q.get("server_id") || "", rule: q.get("rule") || "",
    offset: Math.max(0, parseInt(q.get("offset") || "0", 10) || 0) };
  const fServer = select("f-server", "Server", [["", "Any server"]], state.server_id);
  const fRule = select("f-rule", "Rule", [["", "Any rule"]], state.rule);
  const lab = (text, input) => el("label", {}, text, input);
  const form = el("form", { id: "alert-filters", class: "filters" }, lab("Server", fServer), lab("Rule", fRule),
    el("button", { id: "f-reset", type: "button", text: "Reset" }));
  const head = cols => el("thead", {}, el("tr", {}, cols.map(h => el("th", { text: h }))));
  const table = (id, cols, body) => el("div", { class: "table-wrap" }, el("table", { id }, head(cols), body));
  const activeBody = el("tbody");
  const silenceBody = el("tbody");
  const historyBody = el("tbody");
  const ruleBody = el("tbody");
  const channelBody = el("tbody");
  const info = el("span", { id: "history-info", class: "muted" });
  const prev = el("button", { id: "history-prev", type: "button", text: "‹ Newer" });
  const next = el("button", { id: "history-next", type: "button", text: "Older ›" });
  const activeCount = el("span", { id: "active-count", class: "muted" });
  const op = canOperate();
  const refreshSoon = () => refresh();
  const bar = (...items) => el("div", { class: "toolbar" }, ...items);

  const sections = [
    el("h1", { text: "Alerts" }), form,
    el("section", { id: "active-section" },
      el("h2", {}, "Firing and pending ", activeCount),
      table("active-alerts", ["Rule", "Severity", "State", "Server", "Mount / container", "Value", "Since", "Acknowledged", ""], activeBody)),
    el("section", { id: "silences-section" },
      el("h2", { text: "Silences running or ahead" }),
      op ? bar(el("button", { id: "add-silence", type: "button", text: "Add silence", onclick: () => openSilenceForm({}, refreshSoon) })) : null,
      table("silences", ["Rule", "Server", "Tag", "From", "Until", "Comment", "By", ""], silenceBody)),
    el("section", { id: "history-section" },
      el("h2", { text: "Resolved" }),
      el("div", { class: "pager" }, prev, next, info),
      table("alert-history", ["Rule", "Severity", "Server", "Mount / container", "Last value", "Started", "Resolved", "Lasted"], historyBody)),
    el("section", { id: "rules-section" },
      el("h2", { text: "Rules" }),
      op ? bar(el("button", { id: "add-rule", type: "button", class: "primary", text: "Add rule", onclick: () => openRuleForm(null, refreshSoon) })) : null,
      table("rules", ["Name", "Metric", "Condition", "For", "Severity", "Scope", "Channels", "Enabled", ""], ruleBody)),
  ];
  if (isAdmin()) sections.push(el("section", { id: "channels-section" },
    el("h2", { text: "Notification channels" }),
    bar(el("button", { id: "add-channel", type: "button", class: "primary", text: "Add channel", onclick: () => openChannelForm(null, refreshSoon) })),
    table("channels", ["Name", "Kind", "Enabled", "Secret", "Config", "", "Test"], channelBody)));
  $("#main").replaceChildren(...sections);

  const save = () => setParams({ server_id: state.server_id, rule: state.rule, offset: state.offset || "" });
  for (const [e, k] of [[fServer, "server_id"], [fRule, "rule"]]) e.addEventListener("change", () => { state[k] = e.value; state.offset = 0; save(); refresh(); });
  $("#f-reset").addEventListener("click", () => { state.server_id = state.rule = ""; state.offset = 0; fServer.value = fRule.value = ""; save(); refresh(); });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - HISTORY_SIZE); save(); refresh(); });
  next.addEventListener("click", () => { state.offset += HISTORY_SIZE; save(); refresh(); });

  const serverCell = a => el("td", { class: "server" }, el("a", { href: `/servers/${a.server_id}`, text: a.server_name || a.server_id }));
  const act = (cls, text, onclick) => el("button", { type: "button", class: cls, text, onclick });
  const empty = (body, n, text) => { if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: n, class: "muted", text }))); };

  function drawActive(items) {
    activeBody.replaceChildren(...items.map(a => el("tr", { class: "alert-row", "data-id": a.id, "data-state": a.state, "data-rule": a.rule_id,
      "data-server": a.server_id, "data-severity": a.severity },
      el("td", { class: "rule", text: a.rule }),
      el("td", { class: "severity" }, el("span", { class: "badge " + a.severity, text: a.severity })),
      el("td", { class: "state", text: a.state }),
      serverCell(a),
      el("td", { class: "subject", text: a.subject || "–" }),
      el("td", { class: "value num", text: fmtValue(a.value, a.metric) }),
      el("td", { class: "since", title: fmtTime(a.fired_at || a.started_at), text: fmtAgo(a.fired_at || a.started_at) }),
      el("td", { class: "acked message" }, a.acked_at ? `${a.acked_by || "?"}${a.ack_comment ? ": " + a.ack_comment : ""}` : ""),
      el("td", { class: "actions" }, op ? [
        a.acked_at || a.state !== "firing" ? null : act("ack-alert", "Acknowledge", () => openAckForm(a, refreshSoon)),
        act("silence-alert", "Silence", () => openSilenceForm({ rule: a.rule, server: a.server_name }, refreshSoon)),
      ] : null))));
    empty(activeBody, 9, "Nothing firing or pending.");
    activeCount.textContent = `(${items.length})`;
  }

  function drawSilences(items) {
    silenceBody.replaceChildren(...items.map(s => el("tr", { class: "silence-row", "data-id": s.id, "data-server": s.server || "", "data-rule": s.rule || "" },
      el("td", { class: "rule", text: s.rule || "any" }), el("td", { class: "server", text: s.server || "any" }), el("td", { class: "tag", text: s.tag || "any" }),
      el("td", { title: fmtTime(s.starts_at), text: fmtTime(s.starts_at) }), el("td", { title: fmtTime(s.ends_at), text: fmtTime(s.ends_at) }),
      el("td", { class: "comment message", text: s.comment }), el("td", { class: "by", text: s.created_by }),
      el("td", {}, op ? act("end-silence", "End now", async () => {
        try { await api(`/api/silences/${s.id}`, { method: "DELETE" }); refresh(); } catch (e) { banner(e.message); }
      }) : null))));
    empty(silenceBody, 8, "No silences.");
  }

  function drawHistory(d) {
    historyBody.replaceChildren(...d.items.map(a => {
      const from = a.fired_at || a.started_at;
      const lasted = a.resolved_at ? (Date.parse(a.resolved_at) - Date.parse(from)) / 1000 : null;
      return el("tr", { class: "history-row", "data-id": a.id, "data-rule": a.rule_id, "data-server": a.server_id },
        el("td", { class: "rule", text: a.rule }),
        el("td", {}, el("span", { class: "badge " + a.severity, text: a.severity })),
        serverCell(a),
        el("td", { class: "subject", text: a.subject || "–" }),
        el("td", { class: "value num", text: fmtValue(a.value, a.metric) }),
        el("td", { text: fmtTime(from) }), el("td", { text: fmtTime(a.resolved_at) }),
        el("td", { class: "lasted", text: lasted == null ? "–" : lasted < 60 ? Math.round(lasted) + " s" : fmtDuration(lasted) }));
    }));
    empty(historyBody, 8, "No resolved alerts.");
    info.textContent = `${d.total ? state.offset + 1 : 0}–${state.offset + d.items.length} of ${d.total}`;
    prev.disabled = state.offset === 0;
    next.disabled = state.offset + d.items.length >= d.total;
  }

  function drawRules(rules) {
    ruleBody.replaceChildren(...rules.map(r => el("tr", { class: "rule-row", "data-id": r.id, "data-name": r.name, "data-metric": r.metric },
      el("td", { class: "name", text: r.name }), el("td", { class: "metric", text: r.metric }),
      el("td", { class: "condition", text: ruleCondition(r) }), el("td", { text: r.for_secs ? fmtDuration(r.for_secs) : "at once" }),
      el("td", {}, el("span", { class: "badge " + r.severity, text: r.severity })),
      el("td", { class: "scope message", text: scopeText(r.scope) }),
      el("td", { class: "channels", text: r.channels.join(", ") || "–" }),
      el("td", { class: "enabled", text: r.enabled ? "yes" : "no" }),
      el("td", { class: "actions" }, op ? [act("edit-rule", "Edit", () => openRuleForm(r, refreshSoon)),
        ...confirmButton("Delete", `Delete ${r.name} and its alerts?`, "delete-rule", async () => {
          try { await api(`/api/alert-rules/${r.id}`, { method: "DELETE" }); refresh(); } catch (e) { banner(e.message); }
        })] : null))));
    empty(ruleBody, 9, "No rules.");
  }

  function drawChannels(items) {
    channelBody.replaceChildren(...items.map(c => {
      const result = el("span", { class: "test-result message" });
      const shownResult = testResults.get(c.id);
      if (shownResult) { result.textContent = shownResult.text; result.dataset.delivered = shownResult.delivered; }
      const cfg = Object.entries(c.config || {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ");
      return el("tr", { class: "channel-row", "data-id": c.id, "data-name": c.name, "data-kind": c.kind },
        el("td", { class: "name", text: c.name }), el("td", { class: "kind", text: c.kind }),
        el("td", { class: "enabled", text: c.enabled ? "yes" : "no" }),
        el("td", { class: "has-secret", text: c.has_secret ? "sealed" : "none" }),
        el("td", { class: "config message", text: cfg }),
        el("td", { class: "actions" }, act("edit-channel", "Edit", () => openChannelForm(c, refreshSoon)),
          ...confirmButton("Delete", `Delete ${c.name}?`, "delete-channel", async () => {
            try { await api(`/api/notification-channels/${c.id}`, { method: "DELETE" }); refresh(); } catch (e) { banner(e.message); }
          })),
        el("td", { class: "test" }, act("test-channel", "Test", async ev => {
          const button = ev.currentTarget;
          button.disabled = true;
          result.textContent = "sending…";
          delete result.dataset.delivered;
          let shown;
          try {
            const t = await api(`/api/notification-channels/${c.id}/test`, { method: "POST" });
            shown = { delivered: String(!!t.delivered), text: (t.delivered ? "delivered" : "not delivered") +
              (t.status != null ? `, HTTP ${t.status}` : "") + (t.answer ? `: ${t.answer}` : "") + (t.error ? ` (${t.error})` : "") };
          } catch (e) { shown = { delivered: "false", text: e.message }; }
          testResults.set(c.id, shown);
          // The row may have been redrawn by a refresh meanwhile: write into the one shown now.
          const now = $(`tr.channel-row[data-id="${c.id}"] .test-result`) || result;
          now.textContent = shown.text;
          now.dataset.delivered = shown.delivered;
          button.disabled = false;
        }), " ", result));
    }));
    empty(channelBody, 7, "No channels.");
  }

  // What each channel's last Test answered, kept across the 15 s redraws.
  const testResults = new Map();
  let optionsLoaded = false;
  async function load() {
    const filter = new URLSearchParams();
    if (state.server_id) filter.set("server_id", state.server_id);
    if (state.rule) filter.set("rule", state.rule);
    const f = filter.toString() ? "&" + filter.toString() : "";
    const [firing, pending, history, silences, rules, channels, servers] = await Promise.all([
      api(`/api/alerts?state=firing&limit=1000${f}`), api(`/api/alerts?state=pending&limit=1000${f}`),
      api(`/api/alerts?state=resolved&limit=${HISTORY_SIZE}&offset=${state.offset}${f}`),
      api("/api/silences"), api("/api/alert-rules"),
      isAdmin() ? api("/api/notification-channels") : null,
      optionsLoaded ? null : api("/api/servers"),
    ]);
    if (servers) {
      fServer.replaceChildren(el("option", { value: "", text: "Any server" }),
        ...servers.items.sort((a, b) => a.name.localeCompare(b.name)).map(s => el("option", { value: s.id, text: s.name })));
      fServer.value = state.server_id;
      optionsLoaded = true;
    }
    const keepRule = state.rule;
    fRule.replaceChildren(el("option", { value: "", text: "Any rule" }), ...rules.items.map(r => el("option", { value: r.id, text: r.name })));
    fRule.value = keepRule;
    drawActive([...firing.items, ...pending.items]);
    drawSilences(silences.items);
    drawHistory(history);
    drawRules(rules.items);
    if (channels) drawChannels(channels.items);
  }
  const refresh = autoRefresh(load);
}

// ---------- login ----------

function loginPage() {
  const form = $("#login");
  // Only a path on this server: never an open redirect.
  const target = localPath(params().get("next"));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const err = $("#error");
    err.textContent = "";
    const body = JSON.stringify({ username: $("#username").value, password: $("#password").value });
    const r = await fetch("/api/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body, credentials: "same-origin" });
    if (r.ok) { location.href = target; return; }
    const e = await r.json().catch(() => ({}));
    err.textContent = e.error || `login failed (${r.status})`;
  });
  $("#username").focus();
}

// ---------- start ----------

async function start() {
  if (document.body.dataset.page === "login") return loginPage();
  $("#tz").textContent = "Times in " + (Intl.DateTimeFormat().resolvedOptions().timeZone || "local time");
  $("#logout").addEventListener("click", async () => {
    try { await api("/api/auth/logout", { method: "POST" }); } finally { location.href = "/login"; }
  });
  try {
    await loadMe();
  } catch (e) {
    if (e.status !== 401) banner("Could not load: " + e.message);
    return;
  }
  const path = location.pathname;
  const server = path.match(/^\/servers\/([0-9a-fA-F-]{36})$/);
  if (path === "/") { $("#nav-overview").classList.add("current"); return overviewPage(); }
  if (path === "/activity") { $("#nav-activity").classList.add("current"); return activityPage(); }
  if (path === "/alerts") { $("#nav-alerts").classList.add("current"); return alertsPage(); }
  if (server) return serverPage(server[1]);
  banner("No such page.");
}

document.addEventListener("DOMContentLoaded", start);
