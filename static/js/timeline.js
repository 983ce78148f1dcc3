// The timeline canvas: backlog lane, GIL and thread lanes per process, busy cores, and one
// row per request coloured by state. The data layer is drawn into an offscreen canvas only
// when data or the view changes; moving the playhead just recomposes (blit + dim + line).

import { ticks, fmtTick, fmtDur } from "./scale.js";
import { textScale } from "./projector.js";
import { recordsOf } from "./records.js";

const GUTTER = 150;      // CSS px for lane labels (times the text scale)
const AXIS = 24;         // time axis height (times the text scale)
// Past this many request spans in view, the request rows are rasterised (one pixel grid,
// put on the layer at once) instead of filled as paths: filling 200,000 sub-pixel rects
// costs a canvas far more than a frame, and most of them share their pixel with others.
const RASTER_SPANS = 4000;
const THREAD_COLOURS = ["#1f5fbf", "#c2255c", "#2b8a3e", "#e8590c", "#7048e8", "#0c8599", "#5c940d", "#d6336c"];

export function stateColours() {
  const css = getComputedStyle(document.documentElement);
  const c = {};
  for (const s of ["connecting", "backlog", "pool", "gil", "cpu", "io", "write", "idle", "dead"]) {
    c[s] = css.getPropertyValue(`--s-${s}`).trim() || "#999";
  }
  // a measured state the lab could not tell: pale grey stripes, never a state's colour
  c.unknown = unknownPattern(css.getPropertyValue("--s-unknown").trim() || "#c3c8cf");
  c.token = css.getPropertyValue("--gil-token").trim() || "#f5c400";
  c.inkSoft = css.getPropertyValue("--ink-soft").trim() || "#3d4753";
  c.ink = css.getPropertyValue("--ink").trim() || "#15202b";
  c.laneA = css.getPropertyValue("--lane-a").trim() || "#f7f8fa";
  c.laneB = css.getPropertyValue("--lane-b").trim() || "#fbfcfd";
  c.grid = css.getPropertyValue("--grid").trim() || "#e3e7ec";
  c.veil = css.getPropertyValue("--veil").trim() || "rgba(255,255,255,0.85)";
  c.bad = css.getPropertyValue("--bad").trim() || "#c62828";
  c.line = css.getPropertyValue("--line").trim() || "#c4cbd3";
  c.accent = css.getPropertyValue("--accent").trim() || "#1f5fbf";
  c.race = "#7048e8";
  return c;
}

function unknownPattern(colour) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  t.fillStyle = "#f4f5f7";
  t.fillRect(0, 0, 8, 8);
  t.strokeStyle = colour;
  t.lineWidth = 2;
  t.beginPath();
  t.moveTo(-2, 10); t.lineTo(10, -2);
  t.moveTo(6, 10); t.lineTo(10, 6);
  t.moveTo(-2, 2); t.lineTo(2, -2);
  t.stroke();
  return t.createPattern(tile, "repeat") || colour;
}

export class Timeline {
  constructor(canvas, store, scale, opts = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.store = store;
    this.scale = scale;
    this.opts = opts;
    this.layer = document.createElement("canvas");
    this.lctx = this.layer.getContext("2d");
    this.colours = stateColours();
    this.lanes = [];
    this.height = 120;
    this.drawnKey = "";
    this.selected = -1;
    this.maxRequestsHeight = opts.maxRequestsHeight || 380;
    this.k = 1;
    this.marks = [];       // [{t, label, kind}]: moments marked on the axis (an answer, the run's)
    this.focusLane = "";   // the lane a lesson points at: outlined
  }

  // A canvas font at this view's text scale.
  font(px, weight = "") { return `${weight} ${Math.round(px * this.k)}px system-ui, sans-serif`; }
  get axis() { return Math.round(AXIS * Math.min(this.k, 1.25)); }

  // Work out the lanes for the current run (call after store.reset(meta)).
  // ``opts.fit()``, when it gives a height, is the room the whole canvas may take: the
  // request rows share what the other lanes leave (projector mode fills the screen).
  layout() {
    const m = this.store.meta;
    const k = this.k = textScale();
    const big = k > 1;
    this.colours = stateColours();
    const lanes = [];
    let y = this.axis;
    const add = (lane) => { lane.y = y; y += lane.h; lanes.push(lane); return lane; };
    if (m) {
      add({ kind: "backlog", label: "Kernel backlog", h: big ? 36 : 44 });
      const nth = Math.max(m.threads.length, 1);
      const thH = Math.max(3, Math.min(big ? 26 : 24, (big ? 100 : 240) / nth));
      for (const [pi, p] of m.processes.entries()) {
        if (p.threads.length === 1) {  // one thread: one lane, named after its process
          add({ kind: "thread", label: p.label, h: Math.max(thH, big ? 26 : 22), thread: p.first, proc: pi, solo: true });
          continue;
        }
        add({ kind: "proc", label: p.label, h: big ? 25 : 22, proc: pi });
        // with one thread the GIL lane would only repeat the thread lane
        if (p.threads.length > 1 && m.processes.length <= 16) add({ kind: "gil", label: "GIL holder", h: big ? 22 : 18, proc: pi });
        for (let j = 0; j < p.threads.length; j++) {
          const key = p.threads[j];
          const short = key.includes("/") ? key.split("/").slice(1).join("/") : key;
          add({ kind: "thread", label: thH >= 12 ? `thread ${short}` : "", h: thH, thread: p.first + j });
        }
      }
      add({ kind: "cores", label: `Busy cores (of ${m.cores})`, h: big ? 28 : 36 });
      const nReq = Math.max(m.n_requests, 1);
      const head = big ? 0 : 22;  // a projector has no room to spare: the rows say "user N"
      const room = this.opts.fit ? this.opts.fit() : null;
      let rowH = Math.min(22, this.maxRequestsHeight / nReq);
      if (room) rowH = Math.max(Math.min(40, (room - y - head - 6) / nReq), Math.min(rowH, 6));
      if (head) add({ kind: "reqhead", label: `Requests (${m.n_requests}), one row each`, h: head });
      add({ kind: "requests", label: "", h: Math.max(rowH * nReq, 20), rowH });
    }
    this.lanes = lanes;
    this.height = y + 6;
    this.canvas.style.height = `${this.height}px`;
    this.drawnKey = "";
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.opts.width || this.canvas.clientWidth || this.canvas.parentElement.clientWidth;
    this.cssW = w;
    this.dpr = dpr;
    for (const c of [this.canvas, this.layer]) {
      const W = Math.round(w * dpr), H = Math.round(this.height * dpr);
      if (c.width !== W || c.height !== H) { c.width = W; c.height = H; }
    }
    const gutter = Math.round(GUTTER * this.k);
    this.scale.setPixels(gutter, w - gutter - 16);
    this.drawnKey = "";
  }

  // Redraw the data layer if the data, view or size changed.
  renderLayer() {
    const key = `${this.store.version}|${this.scale.version}|${this.canvas.width}|${this.height}|${this.selected}`;
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    const ctx = this.lctx, dpr = this.dpr || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.cssW, this.height);
    const s = this.store, m = s.meta, sc = this.scale, C = this.colours;
    if (!m) return;
    const x0 = sc.left, x1 = sc.left + sc.width;

    // lane backgrounds and labels
    ctx.textBaseline = "middle";
    for (const [i, lane] of this.lanes.entries()) {
      if (lane.kind === "proc" || lane.kind === "reqhead") continue;  // drawn over the dimming
      if (lane.kind !== "requests") {
        ctx.fillStyle = i % 2 ? C.laneA : C.laneB;
        ctx.fillRect(x0, lane.y, x1 - x0, lane.h);
      }
      if (lane.label) {
        ctx.fillStyle = C.inkSoft;
        const px = Math.min(14 * this.k, lane.h * 0.8);
        ctx.font = `${px >= 13 ? "600" : ""} ${Math.round(px)}px system-ui, sans-serif`;
        const indent = (lane.kind === "thread" && !lane.solo) || lane.kind === "gil" ? 18 : 8;
        ctx.fillText(clipText(ctx, lane.label, this.scale.left - indent - 6), indent, lane.y + lane.h / 2);
      }
    }

    // vertical grid + axis labels
    const tk = ticks(sc.t0, sc.t1, Math.max(2, Math.floor(sc.width / (110 * this.k))));
    const AX = this.axis;
    ctx.strokeStyle = C.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const t of tk.marks) {
      const x = Math.round(sc.x(t)) + 0.5;
      ctx.moveTo(x, AX - 4); ctx.lineTo(x, this.height);
    }
    ctx.stroke();
    ctx.fillStyle = C.inkSoft;
    ctx.font = this.font(14);
    ctx.textAlign = "center";
    for (const t of tk.marks) {
      const label = fmtTick(t, tk.step), half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(sc.x(t), this.cssW - half - 2), AX / 2);  // the last stays whole
    }
    ctx.textAlign = "left";

    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, 0, x1 - x0, this.height);
    ctx.clip();
    const iA = Math.max(0, s.frameAt(sc.t0) - 1), iB = s.n ? Math.min(s.n - 1, s.frameAt(sc.t1) + 1) : -1;
    for (const lane of this.lanes) {
      if (lane.kind === "backlog") this.drawBacklog(ctx, lane);
      else if (lane.kind === "cores") this.drawSeries(ctx, lane, s.busy, m.cores, iA, iB, C.cpu);
      else if (lane.kind === "gil") this.drawGil(ctx, lane, iA, iB);
    }
    this.drawThreads(ctx);
    this.drawRequests(ctx);
    ctx.restore();
  }

  // An area chart of a per-frame series, one column per pixel (the max within it).
  drawSeries(ctx, lane, arr, top, iA, iB, colour) {
    const s = this.store, sc = this.scale;
    if (iB < iA) return;
    const pad = 4, h = lane.h - 2 * pad, base = lane.y + lane.h - pad;
    const path = new Path2D();
    path.moveTo(sc.x(iA ? s.t[iA - 1] : 0), base);
    let lastX = -1, colMax = 0, prevY = base;
    for (let i = iA; i <= iB; i++) {
      const xa = sc.x(i ? s.t[i - 1] : 0), xb = sc.x(s.t[i]);
      const px = Math.floor(xb);
      if (px === lastX) { colMax = Math.max(colMax, arr[i]); continue; }
      if (lastX >= 0) {
        const y = base - (colMax / top) * h;
        path.lineTo(lastX, prevY); path.lineTo(lastX, y); prevY = y;
      }
      lastX = px; colMax = arr[i];
      if (xb - xa > 2) {  // a wide frame: draw it as a step
        const y = base - (arr[i] / top) * h;
        path.lineTo(xa, prevY); path.lineTo(xa, y); path.lineTo(xb, y); prevY = y; lastX = -1;
      }
    }
    if (lastX >= 0) {
      const y = base - (colMax / top) * h;
      path.lineTo(lastX, prevY); path.lineTo(lastX, y); path.lineTo(lastX + 1, y); prevY = y;
    }
    path.lineTo(sc.x(s.t[iB]), prevY);
    path.lineTo(sc.x(s.t[iB]), base);
    path.closePath();
    ctx.fillStyle = colour;
    ctx.globalAlpha = 0.85;
    ctx.fill(path);
    ctx.globalAlpha = 1;
  }

  // The kernel backlog as a step chart of its exact depth (every change, from the request
  // spans): each device pixel column is drawn to the deepest value within it, so a queue of
  // one that lasts a fraction of a tick still shows, and columns of one depth are one rect
  // (a path of thousands of sub-pixel steps costs the canvas far more to fill).
  drawBacklog(ctx, lane) {
    const s = this.store, sc = this.scale, q = s.bl, known = s.lastT, dpr = this.dpr || 1;
    const top = Math.max(1, s.backlogAt(known).peak);
    const pad = 4, h = lane.h - 2 * pad, base = lane.y + lane.h - pad;
    const y = (d) => base - (d / top) * h;
    const n = q.t.length, tEnd = Math.min(sc.t1, known);
    let lo = 0, hi = n;  // the first change at or after the view's start
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q.t[mid] < sc.t0) lo = mid + 1; else hi = mid;
    }
    let i = lo, depth = i > 0 ? q.depth[i - 1] : 0;
    const cols = Math.ceil((Math.min(sc.left + sc.width, sc.x(known)) - sc.left) * dpr);
    const path = new Path2D();
    let runX = 0, runD = 0;
    const flush = (x) => {
      if (runD > 0 && x > runX) path.rect(sc.left + runX / dpr, y(runD), (x - runX) / dpr, base - y(runD));
    };
    for (let c = 0; c < cols; c++) {
      const edge = Math.min(sc.t(sc.left + (c + 1) / dpr), tEnd);  // this column's end
      let deepest = depth;
      while (i < n && (q.t[i] < edge || (c === cols - 1 && q.t[i] <= tEnd))) {
        depth = q.depth[i++];
        if (depth > deepest) deepest = depth;
      }
      if (deepest !== runD) { flush(c); runX = c; runD = deepest; }
    }
    flush(cols);
    ctx.fillStyle = this.colours.backlog;
    ctx.globalAlpha = 0.85;
    ctx.fill(path);
    ctx.globalAlpha = 1;
    ctx.fillStyle = this.colours.inkSoft;
    ctx.font = this.font(13);
    ctx.textBaseline = "top";
    ctx.fillText(`peak ${s.backlogAt(known).peak}`, sc.left + 4, lane.y + 2);
    ctx.textBaseline = "middle";
  }

  drawGil(ctx, lane, iA, iB) {
    const s = this.store, sc = this.scale, np = s.np, p = lane.proc;
    let runStart = -1, holder = -1;
    const flush = (end) => {
      if (holder >= 0 || holder === -2) {
        ctx.fillStyle = holder >= 0 ? THREAD_COLOURS[holder % THREAD_COLOURS.length] : this.colours.unknown;
        const xa = sc.x(runStart), xb = sc.x(end);
        ctx.fillRect(xa, lane.y + 3, Math.max(xb - xa, 0.5), lane.h - 6);
      }
    };
    for (let i = iA; i <= iB; i++) {
      const h = s.gil[i * np + p];
      if (h !== holder) {
        flush(i ? s.t[i - 1] : 0);
        holder = h; runStart = i ? s.t[i - 1] : 0;
      }
    }
    if (iB >= 0) flush(s.t[iB]);
  }

  // Thread lanes from the frames: one state per tick, one sample per pixel column.
  drawThreads(ctx) {
    const s = this.store, sc = this.scale, C = this.colours, nth = s.nth;
    const states = s.meta.thread_states;
    const lanes = this.lanes.filter((l) => l.kind === "thread");
    if (!lanes.length || !s.n) return;
    const paths = {};
    const xEnd = Math.min(sc.left + sc.width, sc.x(s.t[s.n - 1]));
    // column boundaries: one per frame when frames are wider than a pixel, else per pixel
    const cols = [];
    const frameW = s.tick / sc.msPerPx;
    if (frameW >= 1) {
      const iA = s.frameAt(sc.t0), iB = s.frameAt(sc.t1);
      for (let i = iA; i <= iB; i++) cols.push([i, sc.x(i ? s.t[i - 1] : 0), sc.x(s.t[i])]);
    } else {
      for (let x = sc.left; x < xEnd; x++) cols.push([s.frameAt(sc.t(x + 1)), x, x + 1]);
    }
    // the runs of one request on one thread, [request, x from, x to], for the labels: a
    // thread takes a request when it starts serving it, which is not when it was accepted
    // (gthread's main thread accepts for the pool, so its requests wait before a thread)
    const served = [];
    for (const lane of lanes) {
      const h = lane.thread, pad = lane.h >= 10 ? 2 : 0.5;
      let runState = -1, runX = 0, lastX = 0, runReq = -1, reqX = 0;
      const flush = () => {
        const st = states[runState];
        if (runState >= 0 && st !== "idle" && st !== "absent") {
          const p = paths[st] || (paths[st] = new Path2D());
          p.rect(runX, lane.y + pad, Math.max(lastX - runX, 0.6), lane.h - 2 * pad);
        }
      };
      const endReq = () => { if (runReq >= 0) served.push([lane, runReq, reqX, lastX]); };
      for (const [i, xa, xb] of cols) {
        const code = s.th[i * nth + h];
        if (code !== runState) { flush(); runState = code; runX = xa; }
        const st = states[code];
        const req = st === "idle" || st === "absent" ? -1 : s.thReq[i * nth + h];
        if (req !== runReq) { endReq(); runReq = req; reqX = xa; }
        lastX = xb;
      }
      flush();
      endReq();
    }
    for (const st in paths) { ctx.fillStyle = C[st] || "#888"; ctx.fill(paths[st]); }
    // label each request on its thread, from where the thread took it, when there is room
    if (!lanes.some((l) => l.h >= 14)) return;
    const px = Math.min(12 * this.k, 0.72 * Math.min(...lanes.map((l) => l.h)));
    ctx.font = `600 ${Math.round(px)}px system-ui, sans-serif`;
    ctx.fillStyle = "#ffffff";
    ctx.textBaseline = "middle";
    for (const [lane, req, xFrom, xTo] of served) {
      if (lane.h < 14) continue;
      const xa = Math.max(xFrom, sc.left), xb = Math.min(xTo, sc.left + sc.width);
      if (xb - xa < 4 * px) continue;
      ctx.fillText(`user ${req + 1}`, xa + 5, lane.y + lane.h / 2 + 1);
    }
  }

  drawRequests(ctx) {
    const s = this.store, sc = this.scale, sp = s.reqSpans, C = this.colours;
    const lane = this.lanes.find((l) => l.kind === "requests");
    if (!lane) return;
    const states = s.meta.request_states;
    const rowH = lane.rowH, gap = rowH >= 8 ? 2 : 0;
    const h = Math.max(rowH - gap, 1);
    // a span is known from its start; draw it only as far as the frames received reach
    const known = s.lastT;
    const unknown = states.indexOf("unknown");
    let inView = 0;
    for (let i = 0; i < sp.n && inView <= RASTER_SPANS; i++) {
      if (!(sp.b[i] < sc.t0 || sp.a[i] > sc.t1 || sp.a[i] > known)) inView++;
    }
    const raster = inView > RASTER_SPANS;
    if (raster) this.rasterRequests(ctx, lane, unknown);
    const paths = {};
    for (let i = 0; i < sp.n; i++) {
      if (sp.b[i] < sc.t0 || sp.a[i] > sc.t1 || sp.a[i] > known) continue;
      if (raster && sp.s[i] !== unknown) continue;
      const st = states[sp.s[i]];
      const xa = sc.x(sp.a[i]), xb = sc.x(Math.min(sp.b[i], known));
      const p = paths[st] || (paths[st] = new Path2D());
      p.rect(xa, lane.y + sp.k[i] * rowH + gap / 2, Math.max(xb - xa, 0.6), h);
    }
    for (const st of states) if (paths[st]) { ctx.fillStyle = C[st]; ctx.fill(paths[st]); }
    // a request that did not end well: a mark where it ended, with how
    ctx.font = `600 ${Math.round(Math.min(13 * this.k, Math.max(11, rowH * 0.75)))}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    const idx = recordsOf(s);
    // a mark's words, right of it; left of it, on a light ground over the request's own
    // bar, when they would run past the plot's edge
    const words = (text, x, y, top, colour) => {
      const w = ctx.measureText(text).width;
      if (x + 5 + w <= sc.left + sc.width) { ctx.fillText(text, x + 5, y + 1); return; }
      ctx.fillStyle = C.laneB;
      ctx.fillRect(x - 8 - w, top, w + 6, h);
      ctx.fillStyle = colour;
      ctx.fillText(text, x - 5 - w, y + 1);
    };
    for (const i of idx.failures) {
      const r = s.done[i];
      if (r.finished === null || r.finished > known) continue;
      if (r.finished < sc.t0 || r.finished > sc.t1) continue;
      const x = sc.x(r.finished), y = lane.y + r.id * rowH + rowH / 2;
      ctx.fillStyle = C.bad;
      ctx.fillRect(x - 2, lane.y + r.id * rowH + gap / 2, 4, h);
      if (rowH >= 12) words(`✕ ${r.http ? r.http : r.status}`, x, y, lane.y + r.id * rowH + gap / 2, C.bad);
    }
    // a request that read another request's value of a module global: a mark where it read it
    for (const i of idx.races) {
      const r = s.done[i];
      if (r.finished === null || r.finished > known || r.finished < sc.t0 || r.finished > sc.t1) continue;
      const x = sc.x(r.finished), y = lane.y + r.id * rowH + rowH / 2;
      ctx.fillStyle = C.race;
      ctx.fillRect(x - 2, lane.y + r.id * rowH + gap / 2, 4, h);
      if (rowH >= 12) words("⚠ read another request's global", x, y, lane.y + r.id * rowH + gap / 2, C.race);
    }
    if (this.selected >= 0) {
      ctx.strokeStyle = C.ink;
      ctx.lineWidth = 2;
      ctx.strokeRect(sc.left + 1, lane.y + this.selected * rowH, sc.width - 2, Math.max(rowH, 2));
    }
    // row labels in the gutter
    ctx.restore();
    ctx.save();
    ctx.fillStyle = C.inkSoft;
    // as large as the rows allow: 14 px (20 px on a projector), one label per row when it fits
    const labelPx = Math.max(11, Math.min(14 * this.k, rowH * 0.9));
    ctx.font = `${Math.round(labelPx)}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    const n = s.meta.n_requests;
    const every = rowH >= labelPx ? 1 : Math.ceil((labelPx + 4) / rowH);
    // a row's label, kept whole inside the lane (rows thinner than the type)
    const yOf = (r) => Math.min(Math.max(lane.y + r * rowH + rowH / 2, lane.y + labelPx / 2),
      lane.y + lane.h - labelPx / 2);
    const lastY = every > 1 && n > 1 ? yOf(n - 1) : null;  // the last row is always named
    let prevY = -Infinity;
    for (let r = 0; r < n; r += every) {
      const y = yOf(r);
      if (y - prevY < labelPx + 2) continue;  // too near the first, moved down
      if (lastY !== null && lastY - y < labelPx + 2) break;
      ctx.fillText(`user ${r + 1}`, 8, y);
      prevY = y;
    }
    if (lastY !== null) ctx.fillText(`user ${n}`, 8, lastY);
  }

  // The request rows as one grid of device pixels, put on the layer in one drawImage. A span
  // colours every pixel column it touches, however little of it (so nothing in the data is
  // lost at any zoom: a pixel column with any span in it is coloured), and the pixel rows
  // of its request (at least one); where spans of several states share a pixel, the last
  // state in the legend's order wins, as when the paths are filled in that order. Runs of
  // one state merge into one. Spans of a state drawn as a pattern (``unknown``) are left to
  // the paths.
  rasterRequests(ctx, lane, skip) {
    const s = this.store, sc = this.scale, sp = s.reqSpans, dpr = this.dpr || 1;
    const states = s.meta.request_states, known = s.lastT, t0 = sc.t0, t1 = sc.t1;
    const rowH = lane.rowH, gap = rowH >= 8 ? 2 : 0, h = Math.max(rowH - gap, 1);
    const X0 = Math.round(sc.left * dpr), W = Math.round((sc.left + sc.width) * dpr) - X0;
    const Y0 = Math.floor(lane.y * dpr), H = Math.ceil((lane.y + lane.h) * dpr) - Y0;
    if (W <= 0 || H <= 0) return;
    const grid = this.rasterGrid(W, H), code = grid.code;
    code.fill(0);
    // time -> device pixel column, request -> device pixel row (sc.x and the rows, inlined)
    const kx = (sc.width / (t1 - t0)) * dpr, ox = sc.left * dpr - X0;
    const ky = rowH * dpr, oy = (lane.y + gap / 2) * dpr - Y0, hy = h * dpr;
    const A = sp.a, B = sp.b, S = sp.s, K = sp.k;
    for (let i = 0, n = sp.n; i < n; i++) {
      const a = A[i], st = S[i];
      if (B[i] < t0 || a > t1 || a > known || st === skip) continue;
      const b = B[i] < known ? B[i] : known;
      const xa = (a - t0) * kx + ox, xb = (b - t0) * kx + ox;
      let c0 = Math.floor(xa), c1 = Math.ceil(xb);
      if (c1 <= c0) c1 = c0 + 1;
      if (c0 < 0) c0 = 0;
      if (c1 > W) c1 = W;
      if (c1 <= c0) continue;
      const ya = K[i] * ky + oy;
      let r0 = Math.round(ya), r1 = Math.round(ya + hy);
      if (r1 <= r0) { r0 = Math.floor(ya); r1 = r0 + 1; }
      if (r0 > H - 1) r0 = H - 1;  // the last row's pixel is its own, inside the lane
      if (r0 < 0) r0 = 0;
      if (r1 > H) r1 = H;
      if (r1 <= r0) r1 = r0 + 1;
      const v = st + 1;  // 0 is "nothing here"
      for (let r = r0; r < r1; r++) {
        for (let x = r * W + c0, e = r * W + c1; x < e; x++) if (code[x] < v) code[x] = v;
      }
    }
    // codes -> colours
    const palette = new Uint32Array(states.length + 1);
    for (let k = 0; k < states.length; k++) if (k !== skip) palette[k + 1] = this.rgba(this.colours[states[k]]);
    const px = grid.px;
    for (let x = 0, e = W * H; x < e; x++) px[x] = palette[code[x]];
    grid.ctx.putImageData(grid.img, 0, 0);
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(grid.canvas, X0, Y0);
    ctx.restore();
  }

  // A scratch canvas, its pixels and a state code per pixel, W x H device pixels, kept
  // between draws.
  rasterGrid(W, H) {
    let g = this.grid;
    if (!g || g.img.width !== W || g.img.height !== H) {
      const canvas = g ? g.canvas : document.createElement("canvas");
      canvas.width = W; canvas.height = H;
      const c = canvas.getContext("2d");
      const img = c.createImageData(W, H);
      g = this.grid = { canvas, ctx: c, img, px: new Uint32Array(img.data.buffer), code: new Uint8Array(W * H) };
    }
    return g;
  }

  // A CSS colour as one pixel's 32 bits (in the byte order of ImageData on this machine).
  rgba(colour) {
    const memo = this.rgbaMemo || (this.rgbaMemo = new Map());
    let v = memo.get(colour);
    if (v === undefined) {
      const c = document.createElement("canvas");
      c.width = c.height = 1;
      const x = c.getContext("2d", { willReadFrequently: true });
      x.fillStyle = colour;
      x.fillRect(0, 0, 1, 1);
      v = new Uint32Array(x.getImageData(0, 0, 1, 1).data.buffer)[0];
      memo.set(colour, v);
    }
    return v;
  }

  // Put the data layer on screen, dim what lies after the playhead, draw the playhead.
  compose(playhead) {
    this.renderLayer();
    const ctx = this.ctx, dpr = this.dpr || 1, sc = this.scale;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    // A canvas not laid out yet (hidden, or between resizes) has no pixels to copy.
    if (this.layer.width > 0 && this.layer.height > 0) ctx.drawImage(this.layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const C = this.colours, AX = this.axis;
    if (!this.store.meta) {
      ctx.fillStyle = C.inkSoft;
      ctx.font = this.font(16);
      ctx.fillText(this.opts.empty || "Waiting for the run…", 16, 40);
      return;
    }
    const x = sc.x(playhead);
    const xr = sc.left + sc.width;
    if (x < xr) {
      ctx.fillStyle = C.veil;
      const xa = Math.max(x, sc.left);
      ctx.fillRect(xa, AX, xr - xa, this.height - AX);
    }
    ctx.fillStyle = C.ink;
    ctx.font = this.font(14, "700");
    ctx.textBaseline = "middle";
    for (const lane of this.lanes) {
      if (lane.kind === "proc" || lane.kind === "reqhead") ctx.fillText(lane.label, 8, lane.y + lane.h / 2 + 1);
    }
    this.drawFocusLane(ctx);
    this.drawMarks(ctx);
    if (x >= sc.left && x <= xr) {
      ctx.fillStyle = C.ink;
      ctx.fillRect(x - 1, AX - 6, 2, this.height - AX + 6);
      ctx.beginPath();
      ctx.moveTo(x - 6, AX - 10); ctx.lineTo(x + 6, AX - 10); ctx.lineTo(x, AX - 2);
      ctx.fill();
    }
  }

  // The lanes a lesson points at, outlined.
  drawFocusLane(ctx) {
    const want = this.focusLane;
    if (!want) return;
    const kinds = { backlog: ["backlog"], threads: ["thread"], gil: ["gil"], cores: ["cores"], requests: ["requests"] }[want] || [];
    let lanes = this.lanes.filter((l) => kinds.includes(l.kind));
    if (!lanes.length && want === "gil") lanes = this.lanes.filter((l) => l.kind === "thread");
    if (!lanes.length) return;
    const top = Math.min(...lanes.map((l) => l.y)), bottom = Math.max(...lanes.map((l) => l.y + l.h));
    ctx.save();
    ctx.strokeStyle = this.colours.accent;
    ctx.lineWidth = 3;
    ctx.strokeRect(2, top + 1, this.cssW - 4, bottom - top - 2);
    ctx.restore();
  }

  // Moments marked on the timeline: a dashed line and a label at the axis.
  drawMarks(ctx) {
    const sc = this.scale, AX = this.axis;
    for (const m of this.marks) {
      const x = sc.x(m.t);
      if (x < sc.left || x > sc.left + sc.width) continue;
      const colour = m.kind === "truth" ? this.colours.cpu : this.colours.accent;
      ctx.save();
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(x, AX); ctx.lineTo(x, this.height); ctx.stroke();
      ctx.setLineDash([]);
      ctx.font = this.font(12, "700");
      const w = ctx.measureText(m.label).width + 8;
      const lx = Math.min(x + 3, sc.left + sc.width - w);
      ctx.fillStyle = colour;
      ctx.fillRect(lx, AX + 2, w, Math.round(16 * this.k));
      ctx.fillStyle = "#fff";
      ctx.textBaseline = "middle";
      ctx.fillText(m.label, lx + 4, AX + 2 + Math.round(8 * this.k));
      ctx.restore();
    }
  }

  laneAt(y) {
    return this.lanes.find((l) => y >= l.y && y < l.y + l.h) || null;
  }

  // What is under the pointer: {text, req} or null.
  hit(x, y) {
    const s = this.store, m = s.meta;
    if (!m || x < this.scale.left) return null;
    const lane = this.laneAt(y);
    if (!lane) return null;
    const t = this.scale.t(x);
    const k = s.frameAt(t);
    const at = `T = ${(t / 1000).toFixed(3)} s`;
    if (lane.kind === "backlog" && k >= 0) {
      return { text: `${at}\nkernel backlog: ${s.backlogAt(t).depth} waiting (holds ${m.backlog_limit})` };
    }
    if (lane.kind === "cores" && k >= 0) return { text: `${at}\nbusy cores: ${s.busy[k]} of ${m.cores}` };
    if (lane.kind === "gil" && k >= 0) {
      const h = s.gil[k * s.np + lane.proc];
      const who = h >= 0 ? "held by " + m.threads[h] : h === -2 ? "not known (not sampled)" : "free";
      return { text: `${at}\nGIL: ${who}` };
    }
    if (lane.kind === "thread" && k >= 0) {
      const st = m.thread_states[s.th[k * s.nth + lane.thread]];
      const req = s.thReq[k * s.nth + lane.thread];
      const who = req >= 0 ? `user ${req + 1}: ` : "";
      const what = st === "absent" ? "not started yet" : describe(st);
      return { text: `${at}\n${m.threads[lane.thread]} — ${who}${what}`, req: req >= 0 ? req : undefined };
    }
    if (lane.kind === "requests") {
      const req = Math.floor((y - lane.y) / lane.rowH);
      if (req < 0 || req >= m.n_requests) return null;
      const st = s.requestStateAt(req, t);
      const rec = s.byId.get(req);
      let text = `${at}\nuser ${req + 1}: ${st ? describe(st) : "not in the server"}`;
      if (rec) {
        text += `\nGET ${rec.path} — ${rec.status}`;
        if (rec.finished !== null) text += `, latency ${fmtDur(rec.finished - rec.sent)}`;
      }
      return { text, req };
    }
    return null;
  }
}

export function describe(state) {
  return {
    connecting: "connecting (SYN sent, no queue slot yet)",
    backlog: "waiting in the kernel backlog",
    pool: "accepted, waiting for a free thread",
    gil: "waiting for the GIL",
    cpu: "running Python on a core",
    io: "blocked on I/O (GIL released)",
    write: "writing the response",
    idle: "idle",
    dead: "gone (process exited or was killed)",
    unknown: "not known (the lab could not sample it; maybe waiting for the GIL)",
  }[state] || state;
}

function clipText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(t + "…").width > width) t = t.slice(0, -1);
  return t + "…";
}
