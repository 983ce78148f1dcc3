// The request's lifecycle at the playhead, and context locals over time.
//
// * The request inspector's rows carry their start and end (ms): the row the playhead is in
//   is highlighted, and "stage →" / "← stage" move the playhead to the next or previous
//   stage of that request.
// * The run's context view (meta.contexts, from simulator/contexts.py) becomes a panel:
//   per thread (or greenlet) the contexts it has pushed, request.path, g and its
//   threading.local at the playhead, and each process's module globals; the reads that got
//   another request's value, and lost updates, are marked on the timeline.
// It reads the player and the store that main.js exposes on window.wsgiscope; it only
// reads the playhead, except when a stage button moves it.

const $ = (id) => document.getElementById(id);
const EPS = 1e-6;

let lastT = -1, lastMeta = null, lastScale = -1, lastLanes = -1, lastInspector = null;

function app() { return window.wsgiscope; }

function user(r) { return `user ${r + 1}`; }

function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(3)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

// --- the inspector's rows ---------------------------------------------------------------
function rows() {
  return [...document.querySelectorAll("#inspector ol.lifecycle > li")];
}

function highlight(t) {
  const list = rows();
  let current = null;
  for (const li of list) {
    const a = Number(li.dataset.start), b = Number(li.dataset.end);
    const on = t >= a - EPS && (t < b - EPS || (b - a < EPS && Math.abs(t - a) < EPS));
    li.classList.toggle("now", on && !current);
    if (on && !current) current = li;
  }
  const label = document.querySelector("#inspector .lifecycle-now");
  if (label) {
    if (current) {
      const a = Number(current.dataset.start), b = Number(current.dataset.end);
      label.textContent = `at the playhead: ${current.dataset.step} (${fmtMs(b - a)})`;
    } else if (list.length) {
      const first = Number(list[0].dataset.start);
      label.textContent = t < first ? "at the playhead: not sent yet" : "at the playhead: done";
    }
  }
}

function stepStage(dir) {
  const w = app();
  if (!w || !w.player) return;
  const t = w.player.t;
  const starts = [...new Set(rows().map((li) => Number(li.dataset.start)))].sort((x, y) => x - y);
  let to = null;
  if (dir > 0) to = starts.find((s) => s > t + 1e-4);
  else to = [...starts].reverse().find((s) => s < t - 1e-4);
  if (to === undefined || to === null) return;
  if (w.player.playing) w.player.pause();
  w.player.seek(to);
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest && ev.target.closest("[data-stage-step]");
  if (b) stepStage(Number(b.dataset.stageStep));
});

// --- context locals ------------------------------------------------------------------------
function panel() {
  let el = $("contexts");
  if (!el) {
    el = document.createElement("section");
    el.id = "contexts";
    el.className = "contexts";
    el.setAttribute("aria-label", "Context locals at the playhead");
    const inspector = $("inspector");
    inspector.parentNode.insertBefore(el, inspector.nextSibling);
  }
  return el;
}

function latest(list, t, keep) {
  let found = null;
  for (const item of list) {
    if (item[0] > t + EPS) break;
    if (keep(item)) found = item;
  }
  return found;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function valueText(req) { return req === null || req === undefined ? "unset" : user(req); }

function renderContexts(ctx, t) {
  const el = panel();
  el.hidden = false;
  const spans = ctx.spans, writes = ctx.writes;
  const byProc = new Map();
  ctx.threads.forEach((th, i) => {
    if (!byProc.has(th.proc)) byProc.set(th.proc, []);
    byProc.get(th.proc).push([th, i]);
  });
  const names = { global: new Set(), g: new Set(), local: new Set() };
  for (const w of writes) names[w[1]] && names[w[1]].add(w[2]);
  const parts = [`<h2>Context locals <span class="muted">at ${(t / 1000).toFixed(3)} s</span></h2>`,
    `<p class="muted">Flask 3 keeps the app and request contexts in contextvars: each thread has its own${ctx.per_connection ? "" : ""}, and so does each greenlet under gevent. A module global belongs to the process; a threading.local to the thread${ctx.per_connection ? " (here a new one for each connection)" : " (here a thread serves request after request)"}.</p>`];
  for (const [proc, list] of byProc) {
    const globals = [...names.global].map((n) => {
      const w = latest(writes, t, (x) => x[1] === "global" && x[2] === n && x[4] === proc);
      return `<code>${esc(n)}</code> = ${w ? user(w[3]) : "unset"}`;
    });
    parts.push(`<div class="ctx-proc"><h3>process ${esc(proc)}</h3>`);
    if (globals.length) parts.push(`<p class="ctx-globals">module globals: ${globals.join(", ")}</p>`);
    parts.push('<table class="ctx-table"><thead><tr><th>thread</th><th>contexts pushed</th><th>request.path</th><th>g</th><th>threading.local</th></tr></thead><tbody>');
    for (const [th, i] of list) {
      const span = spans.find((s) => s[0] === i && s[2] <= t + EPS && t < s[3] - EPS);
      let stack = '<span class="muted">none</span>', path = "", g = "", local = "";
      if (span) {
        stack = `<span class="ctx-stack"><span class="ctx-req">request ctx (${user(span[1])})</span><span class="ctx-app">app ctx</span></span>`;
        path = `<code>${esc(span[4])}</code>`;
        g = [...names.g].map((n) => {
          const w = latest(writes, t, (x) => x[1] === "g" && x[2] === n && x[4] === `r${span[1]}`);
          return `<code>g.${esc(n)}</code> = ${w ? user(w[3]) : "unset"}`;
        }).join(", ");
      }
      const owner = span ? span[5] : (ctx.per_connection ? null : th.key);
      local = owner === null ? "" : [...names.local].map((n) => {
        const w = latest(writes, t, (x) => x[1] === "local" && x[2] === n && x[4] === owner);
        return `<code>${esc(n)}</code> = ${w ? user(w[3]) : "unset"}`;
      }).join(", ");
      parts.push(`<tr${span ? ' class="busy"' : ""}><td>${esc(th.key)}</td><td>${stack}</td><td>${path}</td><td>${g}</td><td>${local}</td></tr>`);
    }
    parts.push("</tbody></table></div>");
  }
  const done = ctx.reads.filter((r) => r[0] <= t + EPS).slice(-6);
  if (done.length) {
    parts.push('<ul class="ctx-reads">');
    for (const r of done) {
      const what = r[1] === "global" ? `the global ${r[2]}` : r[1] === "g" ? `g.${r[2]}` : `threading.local ${r[2]}`;
      const got = r[3] < 0 ? "nothing" : r[3] === r[4] ? "its own value" : `${user(r[3])}'s value`;
      parts.push(`<li class="${r[6] ? "wrong" : "right"}">${(r[0] / 1000).toFixed(3)} s — ${user(r[4])} read ${esc(what)}: ${got}${r[6] ? " ✗" : " ✓"}</li>`);
    }
    parts.push("</ul>");
  }
  const raced = ctx.races.filter((r) => r[0] <= t + EPS);
  if (raced.length) {
    const r = raced[raced.length - 1];
    parts.push(`<p class="ctx-race">${(r[0] / 1000).toFixed(3)} s — ${user(r[1])}: ${esc(r[3])}</p>`);
  }
  el.innerHTML = parts.join("");
}

// --- marks on the timeline -----------------------------------------------------------------
function marksLayer() {
  let el = $("ctx-marks");
  const canvas = $("timeline");
  if (!canvas) return null;
  if (!el) {
    el = document.createElement("div");
    el.id = "ctx-marks";
    el.className = "ctx-marks";
    el.setAttribute("aria-hidden", "true");
    canvas.parentNode.appendChild(el);
  }
  el.style.left = `${canvas.offsetLeft}px`;
  el.style.top = `${canvas.offsetTop}px`;
  el.style.width = `${canvas.clientWidth}px`;
  el.style.height = `${canvas.clientHeight}px`;
  return el;
}

function drawMarks(ctx) {
  const w = app();
  const el = marksLayer();
  if (!el) return;
  el.innerHTML = "";
  if (!ctx || !w.store.meta) return;
  const threads = w.store.meta.threads;
  const laneOf = new Map();
  for (const lane of w.timeline.lanes) if (lane.kind === "thread") laneOf.set(threads[lane.thread], lane);
  const scale = w.scale;
  const put = (t, key, text, cls) => {
    const lane = laneOf.get(key);
    if (!lane || t < scale.t0 || t > scale.t1) return;
    const m = document.createElement("span");
    m.className = `ctx-mark ${cls}`;
    m.style.left = `${scale.x(t)}px`;
    m.style.top = `${lane.y}px`;
    m.style.height = `${lane.h}px`;
    m.title = text;
    el.appendChild(m);
  };
  for (const r of ctx.reads) {
    if (!r[6] || r[5] < 0) continue;
    const got = r[3] < 0 ? "nothing" : `${user(r[3])}'s value`;
    put(r[0], ctx.threads[r[5]].key, `${user(r[4])} read ${r[1]} ${r[2]} and got ${got}`, "wrong");
  }
  for (const r of ctx.races) {
    if (r[2] < 0 || !r[3].includes("lost")) continue;
    put(r[0], ctx.threads[r[2]].key, `${user(r[1])}: ${r[3]}`, "lost");
  }
}

// --- the loop ------------------------------------------------------------------------------
function tick() {
  const w = app();
  if (w && w.player && w.store) {
    const t = w.player.t;
    const meta = w.store.meta;
    const inspector = document.querySelector("#inspector ol.lifecycle");
    if (t !== lastT || inspector !== lastInspector) highlight(t);
    const ctx = meta && meta.contexts;
    if (meta !== lastMeta && !ctx && $("contexts")) $("contexts").hidden = true;
    if (ctx && (t !== lastT || meta !== lastMeta)) renderContexts(ctx, t);
    const lanes = w.timeline.lanes.length + (w.timeline.height || 0);
    if (meta !== lastMeta || w.scale.version !== lastScale || lanes !== lastLanes) {
      drawMarks(ctx);
      lastScale = w.scale.version;
      lastLanes = lanes;
    }
    lastT = t;
    lastMeta = meta;
    lastInspector = inspector;
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
