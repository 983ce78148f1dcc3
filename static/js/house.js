// The "house": the same instant as a diagram. Clients knock, connections queue in the
// kernel backlog, the accept loop hands them to worker threads, the GIL token sits with
// the thread running Python, the cores light up.

import { stateColours } from "./timeline.js";
import { textScale } from "./projector.js";

const BOX_MAX = 12;   // backlog boxes drawn before "+N more"

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
}

// What each part of the house is and what to look for (its hover text).
export const HOUSE_HELP = {
  clients: "Clients whose SYN has not yet got a place in the accept queue: connecting, or waiting to retransmit after the kernel dropped their SYN (a full backlog costs seconds, not errors).",
  backlog: "The kernel's accept queue (listen backlog): connections the kernel has finished but no server thread has accepted yet. It holds backlog + 1; when full, new SYNs are dropped.",
  accept: "accept(): a server thread takes the next connection out of the kernel's queue. Who accepts, and when, is the server's design: one thread, a thread per connection, forked processes, gunicorn workers.",
  process: "A server process, with its own memory and its own GIL. Processes run in parallel, up to the number of cores.",
  thread: "A thread of this process: idle, running Python (needs the GIL and a core), waiting for the GIL, or blocked on I/O (the GIL is free meanwhile).",
  gil: "The GIL token: the one thread of this process allowed to run Python now. The others that want to run wait for it (red).",
  cores: "The machine's CPU cores: green when a thread runs on it. More runnable threads than cores means they take turns.",
};

export class House {
  constructor(canvas, store) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.store = store;
    this.colours = stateColours();
    this.drawn = "";
    this.regions = [];   // [x, y, w, h, text] of what is drawn, for hover explanations
    this.k = 1;
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    this.w = w; this.h = h; this.dpr = dpr;
    this.k = textScale();
    this.colours = stateColours();
    this.drawn = "";
  }

  font(px, weight = "") { return `${weight} ${Math.round(px * this.k)}px system-ui, sans-serif`; }

  // The explanation of what lies under (x, y), or null. The last drawn region wins.
  hit(x, y) {
    for (let i = this.regions.length - 1; i >= 0; i--) {
      const [rx, ry, rw, rh, text] = this.regions[i];
      if (x >= rx && x <= rx + rw && y >= ry && y <= ry + rh) return text;
    }
    return null;
  }

  // The state at time t (frame k: the last frame at or before t).
  draw(k, t) {
    const s = this.store, m = s.meta;
    const key = `${s.version}|${k}|${t}|${this.canvas.width}|${this.canvas.height}|${this.k}`;
    if (key === this.drawn) return;
    this.drawn = key;
    const ctx = this.ctx, C = this.colours, W = this.w, H = this.h, K = this.k;
    const regions = this.regions = [];
    const region = (x, y, w, h, text) => regions.push([x, y, w, h, text]);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (!m || k < 0) return;
    ctx.textBaseline = "middle";

    // column geometry
    const colClients = 10, wClients = Math.round(84 * K);
    // the accept arrow's gap holds its label ("accept()", drawn at normal type only): what
    // it needs beyond 44 px comes out of the backlog's box, not the server's
    ctx.font = this.font(12);
    const gap = K === 1 ? Math.max(44, Math.ceil(ctx.measureText("accept()").width) + 10) : 44;
    const colQueue = colClients + wClients + 8, wQueue = Math.min(160 * K, W * 0.19) - (gap - 44);
    const wCores = Math.round(84 * K);
    const colCores = W - wCores;
    const colProcs = colQueue + wQueue + gap, wProcs = colCores - colProcs - 12;
    const top = Math.round(28 * K), bottom = H - 12;

    // a column's heading, shortened when the column is narrow (large type, small house)
    const heading = (text, x, width, short) => {
      ctx.fillStyle = C.inkSoft;
      ctx.font = this.font(14, "700");
      const fits = !short || ctx.measureText(text).width <= width;
      ctx.fillText(fits ? text : short, x, top / 2);
    };

    // clients still connecting (SYN sent, waiting for a queue slot or a retransmit)
    heading("Clients", colClients, wClients);
    region(colClients, 0, wClients, H, HOUSE_HELP.clients);
    const connecting = s.connecting[k];
    const dots = Math.min(connecting, 18);
    for (let i = 0; i < dots; i++) {
      ctx.fillStyle = C.connecting;
      ctx.beginPath();
      ctx.arc(colClients + 10 + (i % 3) * 24, top + 16 + Math.floor(i / 3) * 22, 8, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = C.inkSoft;
    ctx.font = this.font(13);
    const line = Math.round(18 * K);
    const done = `${s.completed[k]} done`, failed = s.failed[k] ? `${s.failed[k]} failed` : "";
    const lines = [`${connecting} connecting`];
    // "N done, M failed" on one line if the column has room for it, else on two
    if (failed && ctx.measureText(`${done}, ${failed}`).width > wClients + 4) lines.push(done, failed);
    else lines.push(failed ? `${done}, ${failed}` : done);
    lines.forEach((text, i) => ctx.fillText(text, colClients, bottom - 4 - (lines.length - 1 - i) * line));

    // kernel backlog as boxes
    heading("Kernel backlog", colQueue, wQueue + 30, "Backlog");
    const depth = t === undefined ? s.backlog[k] : s.backlogAt(t).depth;
    const roomy = H - top > 150 * K;  // room for "holds N" under the count
    const qBottom = bottom - (roomy ? 2 : 1) * line - 4;
    roundRect(ctx, colQueue, top, wQueue, qBottom - top, 8);
    ctx.strokeStyle = C.line; ctx.lineWidth = 2; ctx.stroke();
    region(colQueue, 0, wQueue, H, HOUSE_HELP.backlog);
    const perRow = wQueue > 150 ? 4 : 3, bw = (wQueue - 16 - (perRow - 1) * 6) / perRow;
    const bh = Math.max(8, Math.min(26, (qBottom - top - 16) / 3 - 6));
    const rowsFit = Math.max(1, Math.floor((qBottom - top - 8) / (bh + 6)));
    const cap = Math.min(depth, BOX_MAX, perRow * rowsFit);
    for (let i = 0; i < cap; i++) {
      const x = colQueue + 8 + (i % perRow) * (bw + 6);
      const y = top + 8 + Math.floor(i / perRow) * (bh + 6);
      ctx.fillStyle = C.backlog;
      roundRect(ctx, x, y, bw, bh, 4); ctx.fill();
    }
    ctx.fillStyle = C.ink;
    ctx.font = this.font(15, "700");
    const more = depth - cap;
    ctx.fillText(`${depth} waiting${more > 0 ? ` (+${more})` : ""}`, colQueue + 4, bottom - 4 - (roomy ? line : 0));
    if (roomy) {
      ctx.font = this.font(12);
      ctx.fillStyle = C.inkSoft;
      ctx.fillText(`holds ${m.backlog_limit}`, colQueue + 4, bottom - 4);
    }

    // accept arrow
    const ay = top + (bottom - top) / 2 - 10;
    ctx.strokeStyle = C.inkSoft; ctx.lineWidth = 2.5;
    ctx.beginPath(); ctx.moveTo(colQueue + wQueue + 4, ay); ctx.lineTo(colProcs - 6, ay); ctx.stroke();
    ctx.fillStyle = C.inkSoft;
    ctx.beginPath(); ctx.moveTo(colProcs - 4, ay); ctx.lineTo(colProcs - 12, ay - 6); ctx.lineTo(colProcs - 12, ay + 6); ctx.fill();
    ctx.font = this.font(12);
    if (K === 1) ctx.fillText("accept()", colQueue + wQueue + 4, ay - 12);
    region(colQueue + wQueue, ay - 24, colProcs - colQueue - wQueue, 40, HOUSE_HELP.accept);

    // processes and threads
    heading("Server", colProcs, wProcs);
    const np = m.processes.length, nth = m.threads.length;
    const cols = np <= 2 ? np : np <= 6 ? Math.ceil(np / 2) : Math.ceil(Math.sqrt(np * 2));
    const rows = Math.ceil(np / cols);
    const pw = (wProcs - (cols - 1) * 10) / cols, ph = (bottom - top - (rows - 1) * 10) / rows;
    const procHead = Math.round(20 * K);
    for (const [pi, p] of m.processes.entries()) {
      const px = colProcs + (pi % cols) * (pw + 10), py = top + Math.floor(pi / cols) * (ph + 10);
      roundRect(ctx, px, py, pw, ph, 8);
      ctx.fillStyle = C.laneA; ctx.fill();
      ctx.strokeStyle = C.line; ctx.lineWidth = 1.5; ctx.stroke();
      region(px, py, pw, ph, `${p.label}\n${HOUSE_HELP.process}`);
      ctx.fillStyle = C.ink;
      ctx.font = this.font(12, "700");
      const name = ctx.measureText(p.label).width <= pw - 12 ? p.label : p.key;
      if (ph >= procHead + 8) ctx.fillText(clip(ctx, name, pw - 12), px + 8, py + procHead / 2 + 2);
      const holder = s.gil[k * s.np + pi];
      const n = p.threads.length;
      const innerTop = py + (ph >= procHead + 8 ? procHead + 2 : 4), innerH = py + ph - 6 - innerTop;
      const tcols = n <= 4 ? 1 : n <= 16 ? 2 : Math.ceil(Math.sqrt(n * pw / Math.max(innerH, 1)));
      const trows = Math.ceil(n / tcols);
      const tw = (pw - 16 - (tcols - 1) * 6) / tcols;
      const th = Math.min(30 * K, (innerH - (trows - 1) * 4) / trows);
      for (let j = 0; j < n; j++) {
        const ti = p.first + j;
        const state = m.thread_states[s.th[k * nth + ti]];
        const req = s.thReq[k * nth + ti];
        const tx = px + 8 + (j % tcols) * (tw + 6), ty = innerTop + Math.floor(j / tcols) * (th + 4);
        if (state === "absent") {
          ctx.setLineDash([4, 3]);
          roundRect(ctx, tx, ty, tw, th, 4); ctx.strokeStyle = C.line; ctx.stroke();
          ctx.setLineDash([]);
          continue;
        }
        ctx.fillStyle = C[state] || C.idle;
        roundRect(ctx, tx, ty, tw, th, 4); ctx.fill();
        if (state === "idle") { ctx.strokeStyle = C.line; ctx.lineWidth = 1; ctx.stroke(); }
        const who = req >= 0 && state !== "idle" ? `user ${req + 1} · ` : "";
        region(tx, ty, tw, th, `${m.threads[ti]}: ${who}${word(state)}\n${HOUSE_HELP.thread}`);
        const px2 = Math.min(14 * K, th * 0.7);
        if (px2 >= 10 && tw >= 60) {
          ctx.fillStyle = state === "idle" || state === "unknown" ? C.inkSoft : "#fff";
          ctx.font = `600 ${Math.round(px2)}px system-ui, sans-serif`;
          const serving = req >= 0 && state !== "idle";
          const full = serving ? `user ${req + 1} · ${word(state)}` : word(state);
          const room = tw - (holder === ti ? th + 10 : 10);
          const label = !serving || ctx.measureText(full).width <= room ? full : `user ${req + 1}`;
          ctx.fillText(clip(ctx, label, room), tx + 6, ty + th / 2 + 1);
        }
        if (holder === ti) {
          const r = Math.max(5, Math.min(13 * K, th / 2 - 1));
          const gx = tx + tw - r - 3;
          ctx.fillStyle = C.token;
          ctx.beginPath(); ctx.arc(gx, ty + th / 2, r, 0, Math.PI * 2); ctx.fill();
          ctx.strokeStyle = "#8a6d00"; ctx.lineWidth = 1.5; ctx.stroke();
          region(gx - r, ty + th / 2 - r, 2 * r, 2 * r, HOUSE_HELP.gil);
          if (r >= 11) {
            ctx.fillStyle = "#15202b"; ctx.font = `700 ${Math.round(r * 0.8)}px system-ui, sans-serif`;
            ctx.textAlign = "center"; ctx.fillText("GIL", gx, ty + th / 2 + 1); ctx.textAlign = "left";
          }
        }
      }
    }

    // cores
    heading("Cores", colCores, wCores);
    region(colCores, 0, wCores, H, HOUSE_HELP.cores);
    const cores = m.cores, busy = s.busy[k];
    const shownCores = Math.min(cores, 16);
    const csz = Math.min(34 * K, (bottom - top - 2 * line - 8) / Math.ceil(shownCores / 2) - 6);
    for (let c = 0; c < shownCores; c++) {
      const cx = colCores + (c % 2) * (csz + 8), cy = top + Math.floor(c / 2) * (csz + 6);
      roundRect(ctx, cx, cy, csz, csz, 5);
      ctx.fillStyle = c < busy ? C.cpu : C.idle; ctx.fill();
      ctx.strokeStyle = C.line; ctx.lineWidth = 1; ctx.stroke();
    }
    ctx.fillStyle = C.ink;
    ctx.font = this.font(14, "700");
    ctx.fillText(`${busy} of ${cores}`, colCores, bottom - 4 - line);
    ctx.font = this.font(13);
    ctx.fillText("busy", colCores, bottom - 4);
  }
}

function word(state) {
  return { idle: "idle", gil: "wants the GIL", cpu: "running", io: "waiting on I/O", dead: "gone", unknown: "not known" }[state] || state;
}

function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(t + "…").width > width) t = t.slice(0, -1);
  return t + "…";
}
