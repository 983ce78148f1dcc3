// The "house": the same instant as a diagram. Clients knock, connections queue in the
// kernel backlog, the accept loop hands them to worker threads, the GIL token sits with
// the thread running Python, the cores light up.

import { stateColours } from "./timeline.js";

const BOX_MAX = 12;   // backlog boxes drawn before "+N more"

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
}

export class House {
  constructor(canvas, store) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.store = store;
    this.colours = stateColours();
    this.drawn = "";
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    this.w = w; this.h = h; this.dpr = dpr;
    this.drawn = "";
  }

  // The state at time t (frame k: the last frame at or before t).
  draw(k, t) {
    const s = this.store, m = s.meta;
    const key = `${s.version}|${k}|${t}|${this.canvas.width}|${this.canvas.height}`;
    if (key === this.drawn) return;
    this.drawn = key;
    const ctx = this.ctx, C = this.colours, W = this.w, H = this.h;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (!m || k < 0) return;
    ctx.textBaseline = "middle";

    // column geometry
    const colClients = 12, wClients = 84;
    const colQueue = colClients + wClients + 8, wQueue = Math.min(160, W * 0.19);
    const colCores = W - 84;
    const colProcs = colQueue + wQueue + 44, wProcs = colCores - colProcs - 12;
    const top = 30, bottom = H - 12;

    const heading = (text, x) => {
      ctx.fillStyle = "#3d4753";
      ctx.font = "700 14px system-ui, sans-serif";
      ctx.fillText(text, x, 14);
    };

    // clients still connecting (SYN sent, waiting for a queue slot or a retransmit)
    heading("Clients", colClients);
    const connecting = s.connecting[k];
    ctx.font = "13px system-ui, sans-serif";
    const dots = Math.min(connecting, 18);
    for (let i = 0; i < dots; i++) {
      ctx.fillStyle = C.connecting;
      ctx.beginPath();
      ctx.arc(colClients + 10 + (i % 3) * 24, top + 16 + Math.floor(i / 3) * 22, 8, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = "#3d4753";
    ctx.font = "13px system-ui, sans-serif";
    ctx.fillText(`${connecting} connecting`, colClients, bottom - 22);
    ctx.fillText(`${s.completed[k]} done${s.failed[k] ? `, ${s.failed[k]} failed` : ""}`, colClients, bottom - 4);

    // kernel backlog as boxes
    heading("Kernel backlog", colQueue);
    const depth = t === undefined ? s.backlog[k] : s.backlogAt(t).depth;
    roundRect(ctx, colQueue, top, wQueue, bottom - top - 26, 8);
    ctx.strokeStyle = "#c4cbd3"; ctx.lineWidth = 2; ctx.stroke();
    const shown = Math.min(depth, BOX_MAX);
    const perRow = 3, bw = (wQueue - 16 - (perRow - 1) * 6) / perRow, bh = 26;
    const rowsFit = Math.max(1, Math.floor((bottom - top - 40) / (bh + 6)));
    const cap = Math.min(shown, perRow * rowsFit);
    for (let i = 0; i < cap; i++) {
      const x = colQueue + 8 + (i % perRow) * (bw + 6);
      const y = top + 8 + Math.floor(i / perRow) * (bh + 6);
      ctx.fillStyle = C.backlog;
      roundRect(ctx, x, y, bw, bh, 4); ctx.fill();
    }
    ctx.fillStyle = "#15202b";
    ctx.font = "700 15px system-ui, sans-serif";
    const more = depth - cap;
    ctx.fillText(`${depth} waiting${more > 0 ? ` (+${more})` : ""}`, colQueue + 4, bottom - 14);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#5b6673";
    ctx.fillText(`holds ${m.backlog_limit}`, colQueue + 4, bottom + 2);

    // accept arrow
    const ay = top + (bottom - top) / 2 - 10;
    ctx.strokeStyle = "#5b6673"; ctx.lineWidth = 2.5;
    ctx.beginPath(); ctx.moveTo(colQueue + wQueue + 4, ay); ctx.lineTo(colProcs - 6, ay); ctx.stroke();
    ctx.fillStyle = "#5b6673";
    ctx.beginPath(); ctx.moveTo(colProcs - 4, ay); ctx.lineTo(colProcs - 12, ay - 6); ctx.lineTo(colProcs - 12, ay + 6); ctx.fill();
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText("accept()", colQueue + wQueue + 4, ay - 12);

    // processes and threads
    heading("Server", colProcs);
    const np = m.processes.length, nth = m.threads.length;
    const cols = np <= 2 ? np : np <= 6 ? Math.ceil(np / 2) : Math.ceil(Math.sqrt(np * 2));
    const rows = Math.ceil(np / cols);
    const pw = (wProcs - (cols - 1) * 10) / cols, ph = (bottom - top - (rows - 1) * 10) / rows;
    for (const [pi, p] of m.processes.entries()) {
      const px = colProcs + (pi % cols) * (pw + 10), py = top + Math.floor(pi / cols) * (ph + 10);
      roundRect(ctx, px, py, pw, ph, 8);
      ctx.fillStyle = "#f4f6f8"; ctx.fill();
      ctx.strokeStyle = "#c4cbd3"; ctx.lineWidth = 1.5; ctx.stroke();
      ctx.fillStyle = "#15202b";
      ctx.font = "700 12px system-ui, sans-serif";
      const name = ctx.measureText(p.label).width <= pw - 12 ? p.label : p.key;
      ctx.fillText(clip(ctx, name, pw - 12), px + 8, py + 12);
      const holder = s.gil[k * s.np + pi];
      const n = p.threads.length;
      const innerTop = py + 24, innerH = ph - 30;
      const tcols = n <= 4 ? 1 : n <= 16 ? 2 : Math.ceil(Math.sqrt(n * pw / Math.max(innerH, 1)));
      const trows = Math.ceil(n / tcols);
      const tw = (pw - 16 - (tcols - 1) * 6) / tcols;
      const th = Math.min(30, (innerH - (trows - 1) * 4) / trows);
      for (let j = 0; j < n; j++) {
        const ti = p.first + j;
        const state = m.thread_states[s.th[k * nth + ti]];
        const req = s.thReq[k * nth + ti];
        const tx = px + 8 + (j % tcols) * (tw + 6), ty = innerTop + Math.floor(j / tcols) * (th + 4);
        if (state === "absent") {
          ctx.setLineDash([4, 3]);
          roundRect(ctx, tx, ty, tw, th, 4); ctx.strokeStyle = "#c4cbd3"; ctx.stroke();
          ctx.setLineDash([]);
          continue;
        }
        ctx.fillStyle = C[state] || C.idle;
        roundRect(ctx, tx, ty, tw, th, 4); ctx.fill();
        if (state === "idle") { ctx.strokeStyle = "#c4cbd3"; ctx.lineWidth = 1; ctx.stroke(); }
        if (th >= 16 && tw >= 60) {
          ctx.fillStyle = state === "idle" || state === "unknown" ? "#5b6673" : "#fff";
          ctx.font = `600 ${th >= 24 ? 14 : 12}px system-ui, sans-serif`;
          const wide = tw >= 170;
          const serving = req >= 0 && state !== "idle";
          const label = serving ? (wide ? `user ${req + 1} · ${word(state)}` : `user ${req + 1}`) : word(state);
          ctx.fillText(clip(ctx, label, tw - (holder === ti ? 44 : 10)), tx + 6, ty + th / 2 + 1);
        }
        if (holder === ti) {
          const r = Math.max(5, Math.min(13, th / 2 - 1));
          ctx.fillStyle = C.token;
          ctx.beginPath(); ctx.arc(tx + tw - r - 3, ty + th / 2, r, 0, Math.PI * 2); ctx.fill();
          ctx.strokeStyle = "#8a6d00"; ctx.lineWidth = 1.5; ctx.stroke();
          if (r >= 11) {
            ctx.fillStyle = "#15202b"; ctx.font = "700 9px system-ui, sans-serif";
            ctx.textAlign = "center"; ctx.fillText("GIL", tx + tw - r - 3, ty + th / 2 + 1); ctx.textAlign = "left";
          }
        }
      }
    }

    // cores
    heading("Cores", colCores);
    const cores = m.cores, busy = s.busy[k];
    const shownCores = Math.min(cores, 16);
    const csz = Math.min(34, (bottom - top - 30) / Math.ceil(shownCores / 2) - 6);
    for (let c = 0; c < shownCores; c++) {
      const cx = colCores + (c % 2) * (csz + 8), cy = top + Math.floor(c / 2) * (csz + 6);
      roundRect(ctx, cx, cy, csz, csz, 5);
      ctx.fillStyle = c < busy ? C.cpu : "#eef0f3"; ctx.fill();
      ctx.strokeStyle = "#c4cbd3"; ctx.lineWidth = 1; ctx.stroke();
    }
    ctx.fillStyle = "#15202b";
    ctx.font = "700 14px system-ui, sans-serif";
    ctx.fillText(`${busy} of ${cores}`, colCores, bottom - 22);
    ctx.font = "13px system-ui, sans-serif";
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
