// Latency over time, as Brendan Gregg's latency heat maps draw it: time across (when a
// response came, on the timeline's own axis), latency up (log scale), and each cell
// coloured by how many requests landed there. Percentile lines (p50, p95, p99) are computed
// per time window from the latencies in that window -- never by averaging percentiles.
// Modes and outliers a mean hides show at a glance: the SYN-retransmit steps of a full
// backlog (bands at 1, 2, 3 s), the convoy's tail (18 ms beside 3 ms).

import { fmtDur } from "./scale.js";
import { textScale } from "./projector.js";
import { recordsOf, interpolate } from "./records.js";

const PER_DECADE = 6;      // latency buckets per factor of ten
const COL_PX = 4;          // a cell's width (twice that for a run of few requests)
const WINDOW_COLS = 6;     // cells per percentile window
const PCTS = [[50, "p50"], [95, "p95"], [99, "p99"]];

// An axis label for 10^d ms: 0.1 ms, 1 ms, 10 ms, 100 ms, 1 s, 10 s, 100 s.
function decade(d) { return d >= 3 ? `${10 ** (d - 3)} s` : `${d < 0 ? (10 ** d).toFixed(-d) : 10 ** d} ms`; }

function ramp(f) {  // 0..1 -> pale yellow, orange, deep red: [r, g, b]
  const stops = [[255, 236, 153], [247, 103, 7], [120, 20, 20]];
  const x = Math.min(1, Math.max(0, f)) * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), u = x - i;
  return stops[i].map((v, j) => Math.round(v + (stops[i + 1][j] - v) * u));
}

// [r, g, b, a] bytes as one pixel of a Uint32Array over ImageData (this machine's order).
const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function pixel(r, g, b, a) {
  return LITTLE ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
}

export class HeatMap {
  constructor(canvas, store, scale) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.store = store;
    this.scale = scale;
    this.key = "";
    this.cells = null;
    this.colPx = COL_PX;
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    this.canvas.width = Math.round(w * dpr); this.canvas.height = Math.round(h * dpr);
    this.w = w; this.h = h; this.dpr = dpr; this.k = textScale();
    this.key = "";
  }

  // The latency axis for the whole run: log10 bounds, so it stays put while the run plays.
  axis() {
    const s = this.store;
    if (this.axisKey === s.version) return this.ax;
    const idx = recordsOf(s);
    let lo = idx.latMin, hi = idx.latMax;
    if (!(hi > 0)) { lo = 1; hi = 1000; }
    const a = Math.floor(Math.log10(lo) * PER_DECADE) / PER_DECADE;
    let b = Math.ceil(Math.log10(hi) * PER_DECADE + 1e-9) / PER_DECADE;
    if (b - a < 1) b = a + 1;
    this.axisKey = s.version;
    this.ax = { a, b, rows: Math.round((b - a) * PER_DECADE) };
    return this.ax;
  }

  // Cells and percentile windows of what has finished by t, in the visible time window.
  // Records arrive in the order they finished, so those in view are one run of them, and a
  // window's are a run within it: its percentiles come from the records' prefix structures
  // (exactly what sorting the window's latencies gives), not from a sort.
  compute(t) {
    const s = this.store, sc = this.scale, ax = this.axis(), idx = recordsOf(s);
    this.colPx = s.meta && s.meta.n_requests < 200 ? 2 * COL_PX : COL_PX;
    const cols = Math.max(1, Math.floor(sc.width / this.colPx)), msPerCol = (sc.t1 - sc.t0) / cols;
    const counts = new Int32Array(cols * ax.rows), windows = [];
    if (!idx.sorted) return this.computeBySort(t, cols, msPerCol, counts, ax);
    const fin = idx.finished, lg = idx.lg, tEnd = Math.min(t, sc.t1);
    const from = idx.firstKnownAtOrAfter(sc.t0), to = idx.firstKnownAfter(tEnd);
    const clamp = (v) => Math.max(v, 0.01);
    const qs = PCTS.map(([q]) => q);
    let most = 0, w = -1, wFrom = from, wN = 0;
    const close = (end) => {
      if (wN) windows.push({ w, n: wN, p: idx.quantiles(wFrom, end, qs, clamp) });
    };
    for (let i = from; i < to; i++) {
      const f = fin[i];
      if (Number.isNaN(f) || f > tEnd || f < sc.t0) continue;
      const c = Math.min(cols - 1, Math.floor((f - sc.t0) / msPerCol));
      const row = Math.min(ax.rows - 1, Math.max(0, Math.floor((lg[i] - ax.a) * PER_DECADE)));
      const n = ++counts[c * ax.rows + row];
      if (n > most) most = n;
      const cw = Math.floor(c / WINDOW_COLS);
      if (cw !== w) { close(i); w = cw; wFrom = i; wN = 0; }
      wN++;
    }
    close(to);
    return { cols, msPerCol, counts, most, windows, ax };
  }

  // The same, for records that did not arrive in the order they finished: every window's
  // latencies gathered and sorted.
  computeBySort(t, cols, msPerCol, counts, ax) {
    const s = this.store, sc = this.scale, lists = [], windows = [];
    let most = 0;
    for (const r of s.done) {
      if (r.finished === null || r.finished > t || r.finished < sc.t0 || r.finished > sc.t1) continue;
      const lat = Math.max(r.finished - r.sent, 0.01);
      const c = Math.min(cols - 1, Math.floor((r.finished - sc.t0) / msPerCol));
      const row = Math.min(ax.rows - 1, Math.max(0, Math.floor((Math.log10(lat) - ax.a) * PER_DECADE)));
      const n = ++counts[c * ax.rows + row];
      if (n > most) most = n;
      const w = Math.floor(c / WINDOW_COLS);
      (lists[w] || (lists[w] = [])).push(lat);
    }
    for (let w = 0; w < lists.length; w++) {
      const v = lists[w];
      if (!v) continue;
      v.sort((x, y) => x - y);
      windows.push({ w, n: v.length, p: PCTS.map(([q]) => interpolate(v.length, q, (i) => v[i])) });
    }
    return { cols, msPerCol, counts, most, windows, ax };
  }

  // The plot's top and bottom: room above for half a decade's label, below for the lowest
  // label and the legend of the lines (projector type is larger: more room).
  get plot() {
    const K = this.k || 1;
    return { top: Math.round(12 * K) - 6, bottom: this.h - Math.round(18 * K) };
  }

  y(lat, ax) {  // latency (ms) -> pixel row, log scale
    const { top, bottom } = this.plot;
    return bottom - ((Math.log10(Math.max(lat, 0.01)) - ax.a) / (ax.b - ax.a)) * (bottom - top);
  }

  draw(t) {
    const s = this.store, sc = this.scale;
    if (!s.meta || !this.w) return;
    const key = `${s.version}|${sc.version}|${s.doneAt(t)}|${this.canvas.width}|${this.canvas.height}`;
    if (key === this.key) return;
    this.key = key;
    const ctx = this.ctx, W = this.w, H = this.h, K = this.k || 1;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const css = getComputedStyle(document.documentElement);
    const ink = css.getPropertyValue("--ink-soft").trim() || "#3d4753";
    const grid = css.getPropertyValue("--grid").trim() || "#e3e7ec";
    const cells = this.cells = this.compute(t), ax = cells.ax;
    const { top, bottom } = this.plot, rowH = (bottom - top) / ax.rows;
    // gutter: the latency axis, one label per decade
    ctx.font = `${Math.round(12 * K)}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.strokeStyle = grid; ctx.lineWidth = 1;
    for (let d = Math.ceil(ax.a); d <= Math.floor(ax.b); d++) {
      const y = Math.round(this.y(10 ** d, ax)) + 0.5;
      ctx.beginPath(); ctx.moveTo(sc.left, y); ctx.lineTo(sc.left + sc.width, y); ctx.stroke();
      ctx.fillStyle = ink; ctx.textAlign = "right";
      ctx.fillText(decade(d), sc.left - 6, y);
    }
    ctx.textAlign = "left";
    ctx.fillStyle = ink;
    ctx.font = `600 ${Math.round(13 * K)}px system-ui, sans-serif`;
    ctx.fillText("latency", 8, top + 8);
    // cells: one pixel each in a small image, drawn scaled to the cells' size in one go
    // (thousands of fillRects with a colour each cost more than a frame)
    this.drawCells(ctx, cells, bottom, rowH);
    // percentile lines, window by window
    const colours = ["#1558c7", "#8a2be2", "#000000"];
    PCTS.forEach(([, name], i) => {
      ctx.strokeStyle = colours[i]; ctx.fillStyle = colours[i]; ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false, lastW = -2;
      for (const win of cells.windows) {
        const x = sc.left + (win.w + 0.5) * WINDOW_COLS * this.colPx, y = this.y(win.p[i], ax);
        if (!started || win.w !== lastW + 1) ctx.moveTo(x, y); else ctx.lineTo(x, y);
        ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
        started = true; lastW = win.w;
      }
      ctx.stroke();
    });
    // legend of the lines, bottom left
    ctx.font = `${Math.round(12 * K)}px system-ui, sans-serif`;
    let lx = 8;
    PCTS.forEach(([, name], i) => {
      ctx.fillStyle = colours[i];
      ctx.fillRect(lx, H - 10, 14, 3);
      ctx.fillText(name, lx + 18, H - 9);
      lx += 18 + ctx.measureText(name).width + 12;
    });
    if (!cells.windows.length) {
      ctx.fillStyle = ink;
      ctx.fillText("Latencies appear here as responses come in.", sc.left + 8, (top + bottom) / 2);
    }
    // the playhead
    const x = sc.x(t);
    if (x >= sc.left && x <= sc.left + sc.width) {
      ctx.fillStyle = css.getPropertyValue("--ink").trim() || "#15202b";
      ctx.fillRect(x - 1, top, 2, bottom - top);
    }
  }

  drawCells(ctx, cells, bottom, rowH) {
    const ax = cells.ax, cols = cells.cols, rows = ax.rows;
    if (!cells.most) return;
    let g = this.cellImage;
    if (!g || g.img.width !== cols || g.img.height !== rows) {
      const canvas = (g && g.canvas) || document.createElement("canvas");
      canvas.width = cols; canvas.height = rows;
      const c = canvas.getContext("2d");
      const img = c.createImageData(cols, rows);
      g = this.cellImage = { canvas, ctx: c, img, px: new Uint32Array(img.data.buffer) };
    }
    const px = g.px, colour = new Map();
    px.fill(0);
    for (let c = 0; c < cols; c++) {
      for (let r = 0; r < rows; r++) {
        const n = cells.counts[c * rows + r];
        if (!n) continue;
        let v = colour.get(n);
        if (v === undefined) { const [R, G, B] = ramp(Math.sqrt(n / cells.most)); v = pixel(R, G, B, 255); colour.set(n, v); }
        px[(rows - 1 - r) * cols + c] = v;  // row 0 (the lowest latencies) at the bottom
      }
    }
    g.ctx.putImageData(g.img, 0, 0);
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(g.canvas, this.scale.left, bottom - rows * rowH, cols * this.colPx, rows * rowH);
    ctx.restore();
  }

  // What is under (x, y): a cell's count and its window's percentiles.
  hit(x, y) {
    const cells = this.cells, sc = this.scale;
    if (!cells || x < sc.left || x > sc.left + sc.width) return null;
    const ax = cells.ax, { top, bottom } = this.plot, rowH = (bottom - top) / ax.rows;
    const c = Math.floor((x - sc.left) / this.colPx), r = Math.floor((bottom - y) / rowH);
    if (c < 0 || c >= cells.cols || r < 0 || r >= ax.rows) return null;
    const n = cells.counts[c * ax.rows + r];
    const t0 = sc.t0 + c * cells.msPerCol;
    const lo = 10 ** (ax.a + r / PER_DECADE), hi = 10 ** (ax.a + (r + 1) / PER_DECADE);
    let text = `responses at T = ${(t0 / 1000).toFixed(3)}–${((t0 + cells.msPerCol) / 1000).toFixed(3)} s\n` +
      `latency ${fmtDur(lo)}–${fmtDur(hi)}: ${n} request${n === 1 ? "" : "s"}`;
    const win = cells.windows.find((w) => w.w === Math.floor(c / WINDOW_COLS));
    if (win) text += `\nthis window (${win.n}): ${PCTS.map(([, name], i) => `${name} ${fmtDur(win.p[i])}`).join(", ")}`;
    return text;
  }
}
