// Wiring: the player (playhead, speed, stepping), the socket, the views, the lab.

import { Stream } from "./stream.js";
import { Store } from "./store.js";
import { TimeScale, fmtClock, fmtDur } from "./scale.js";
import { Timeline } from "./timeline.js";
import { House } from "./house.js";
import { bindControls, showPlaying } from "./controls.js";
import { Metrics } from "./metrics.js";
import { bindProjector, isProjector, withProjector } from "./projector.js";
import { Lessons } from "./lesson.js";
import { Queueing } from "./queueing.js";
import { HeatMap } from "./heatmap.js";
import { exportCanvas, downloadPng } from "./export.js";
import { Room } from "./room.js";

const $ = (id) => document.getElementById(id);
const body = document.body;

const store = new Store();
const labStore = new Store();
const scale = new TimeScale();
// In projector mode the request rows share the screen's height below the timeline's top.
const fitScreen = () => (isProjector() ? window.innerHeight - ($("timeline").getBoundingClientRect().top + window.scrollY) - 10 : null);
const timeline = new Timeline($("timeline"), store, scale, { empty: "Pick a lesson or press Simulate.", fit: fitScreen });
const labTimeline = new Timeline($("lab-timeline"), labStore, scale, { maxRequestsHeight: 260 });
const house = new House($("house"), store);
const metrics = new Metrics(store, { dl: $("metrics"), histogram: $("histogram"), slowest: $("slowest") });
const queueing = new Queueing(store);
const heatmap = new HeatMap($("heatmap"), store, scale);

// Numbers the measurement script and the browser tests read.
const stats = { bytes: 0, frameMessages: 0, framesReceived: 0, firstFrameAt: 0, startAt: 0, draws: 0, errors: [] };
window.wsgiscope = { store, labStore, scale, stats, timeline };

const player = {
  t: 0,
  playing: false,
  speed: 1,
  run: null,              // {scenario, seed}
  lastSeekSent: -1,
  get end() { return store.meta ? store.end : 0; },

  start(scenario, seed, play) {
    this.run = { scenario, seed };
    queueing.setScenario(scenario);
    this.t = 0;
    this.playing = !!play;
    showPlaying(this.playing);
    stats.startAt = performance.now();
    stats.firstFrameAt = 0; stats.firstDrawAt = 0;
    stats.bytes = 0; stats.frameMessages = 0; stats.framesReceived = 0;
    store.reset(null);
    timeline.opts.empty = "Simulating… (a run of thousands of requests takes a few seconds)";
    timeline.selected = -1;
    dirty = true;
    pendingMeta = null;
    stream.send({ op: "start", scenario, seed, speed: this.speedValue(), play: this.playing, t: 0 });
  },

  speedValue() { return this.speed === Infinity ? "max" : this.speed; },

  toggle() { if (this.playing) this.pause(); else this.play(); },

  play() {
    if (!store.meta) return;
    lessons.onPlay();
    if (store.complete && this.t >= this.end - 1e-6) this.t = 0;  // play again from the top
    this.playing = true;
    showPlaying(true);
    stats.playAt = performance.now(); stats.playT = this.t; stats.playFirstDrawAt = 0;
    stream.send({ op: "play", t: this.t });
    lastNow = performance.now();
  },

  pause() {
    this.playing = false;
    showPlaying(false);
    stream.send({ op: "pause", t: this.t });
  },

  setSpeed(value) {
    this.speed = value === "max" ? Infinity : Number(value);
    stream.send({ op: "speed", value: this.speedValue(), t: this.t });
  },

  // Move the playhead. What the browser has is shown at once; beyond it, ask the server.
  seek(t, { scrubbing = false } = {}) {
    if (!store.meta) return;
    t = Math.max(0, Math.min(t, this.end));
    this.t = t;
    dirty = true;
    if (t > store.lastT + 1e-9 || (this.playing && !scrubbing)) {
      if (t !== this.lastSeekSent) { stream.send({ op: "seek", t }); this.lastSeekSent = t; }
    }
  },

  // Step to the next (dir 1) or previous (dir -1) narrated moment.
  step(dir) {
    if (!store.meta) return;
    if (this.playing) this.pause();
    const lines = store.lines;
    if (dir > 0) {
      const next = lines.find((l) => l[0] > this.t + 1e-6);
      if (next && next[0] <= store.lastT) { this.seek(next[0]); return; }
      if (!store.complete) { stream.send({ op: "step", t: this.t }); return; }
      this.seek(this.end);
    } else {
      let prev = 0;
      for (const l of lines) { if (l[0] < this.t - 1e-6) prev = l[0]; else break; }
      this.seek(prev);
    }
  },
};
window.wsgiscope.player = player;

// --- socket -------------------------------------------------------------------------------
const stream = new Stream(body.dataset.ws, {
  onOpen(again) {
    if (again && player.run) {
      // resume: the run is deterministic, so the server rebuilds it and carries on (a run's
      // head is not kept: the frames come again, from the whole run if it is there by now)
      const have = store.meta && store.meta.partial ? 0 : store.n;
      stream.send({
        op: "start", scenario: player.run.scenario, seed: player.run.seed, speed: player.speedValue(),
        play: player.playing, t: player.t, resume: { key: store.key, have },
      });
    } else if (!again && pendingStart) {
      const p = pendingStart; pendingStart = null;
      player.start(p.scenario, p.seed, p.play);
    }
  },
  onStatus(state) {
    const el = $("conn");
    el.dataset.state = state;
    el.textContent = state === "closed" ? "connection lost — reconnecting…" : state === "connecting" ? "connecting…" : "";
  },
  onMessage(msg, size) {
    stats.bytes += size;
    if (msg.type === "meta") {
      if (msg.key === store.key && store.n && (msg.replace || store.meta.partial)) {
        // The whole run in place of its head: swapped in with the frames that follow, in
        // the same task, so the page never draws an empty store in between.
        pendingMeta = msg;
      } else if (msg.key !== store.key || !store.n) {
        store.reset(msg);
        scale.fit(Math.max(msg.end_ms, labStore.meta ? labStore.end : 0));
        timeline.layout();
        sizeAll();
        renderedLine = -2;
      }
      body.dataset.partial = String(!!(store.meta && store.meta.partial));
      if (msg.partial) stats.heads = (stats.heads || 0) + 1;
    } else if (msg.type === "frames") {
      stats.frameMessages++;
      stats.framesReceived += msg.t.length;
      stats.frameBytes = (stats.frameBytes || 0) + size;
      if (pendingMeta && msg.i === 0) { replaceRun(pendingMeta); pendingMeta = null; }
      store.ingest(msg);
      if (!stats.firstFrameAt) stats.firstFrameAt = performance.now();
      dirty = true;
    } else if (msg.type === "end") {
      store.complete = true;
      dirty = true;
    } else if (msg.type === "goto") {
      player.t = msg.t;
      dirty = true;
    } else if (msg.type === "inspect") {
      $("inspector").innerHTML = msg.html;
    } else if (msg.type === "error") {
      stats.errors.push(msg);
      showNotice(msg.field ? `${msg.field}: ${msg.error}` : msg.error);
    }
  },
});
let pendingStart = null, pendingMeta = null;
window.wsgiscope.stream = stream;

// The whole run replaces the head it started from: same key, same frames so far (the page
// gets them again right after), a known end and summary. The playhead, the selection and
// a zoomed view stay; a view that showed the whole (estimated) run shows the whole run.
function replaceRun(meta) {
  const fitted = scale.t0 <= 0 && Math.abs(scale.t1 - scale.end) < 1e-6;
  const atEnd = player.t >= store.end - 1e-6;  // the head's end was an estimate of the run's
  const end = Math.max(meta.end_ms, labStore.meta ? labStore.end : 0);
  store.reset(meta);
  if (fitted) scale.fit(end);
  else { scale.end = Math.max(end, 0.01); scale.clamp(); }
  player.t = atEnd ? meta.end_ms : Math.min(player.t, meta.end_ms);
  timeline.layout();
  sizeAll();
  renderedLine = -2;
  body.dataset.partial = "false";
  stats.replaced = (stats.replaced || 0) + 1;
}
const lessons = new Lessons({ store, player, scale, timeline, stream, redraw: () => { dirty = true; } });
window.wsgiscope.lessons = lessons;
lessons.load($("lesson"));
const room = new Room({ store, player, timeline, stream, lessons, inspect: (id) => inspect(id) });
window.wsgiscope.room = room;

function showNotice(text) {
  const el = $("conn");
  el.dataset.state = "closed";
  el.textContent = text;
  setTimeout(() => { if (el.textContent === text) { el.textContent = ""; el.dataset.state = "open"; } }, 6000);
}

// A fresh #run-info (first load, preset, Simulate, import) starts its run.
function startFromRunInfo(play) {
  const info = $("run-info");
  if (!info) return;
  const scenario = JSON.parse(info.dataset.scenario);
  const seed = info.dataset.seed === "" ? null : Number(info.dataset.seed);
  const doPlay = play === undefined ? info.dataset.play === "true" : play;
  history.replaceState(null, "", withProjector($("copy-share").dataset.share));
  if (stream.open) player.start(scenario, seed, doPlay);
  else pendingStart = { scenario, seed, play: doPlay };
}
htmx.onLoad((elt) => {
  if (elt.id === "run-info") { startFromRunInfo(); bindRunInfo(); }
  if (elt.id === "lesson") lessons.load(elt);
});
// The clipboard API needs a secure context (https or localhost); a classroom server on the
// LAN over http has none, so fall back to a selected text field and execCommand.
async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); return true; }
  } catch { /* fall through */ }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed"; area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let done = false;
  try { done = document.execCommand("copy"); } catch { done = false; }
  area.remove();
  return done;
}
function bindRunInfo() {
  $("copy-share").addEventListener("click", async (ev) => {
    const button = ev.currentTarget;  // gone from the event once the await returns
    button.textContent = (await copyText(button.dataset.share)) ? "Link copied" : "Link is in the address bar";
    setTimeout(() => { button.textContent = "Copy share link"; }, 4000);
  });
  for (const [id, projector] of [["export-png", false], ["export-png-projector", true]]) {
    $(id).addEventListener("click", () => {
      if (!store.meta || !player.run) return;
      const lesson = $("lesson");
      const title = lesson && lesson.dataset.name ? $("preset").selectedOptions[0].textContent : store.meta.name;
      const canvas = exportCanvas({ store, scale, title, scenario: player.run.scenario, seed: store.meta.seed, projector });
      window.wsgiscope.lastExport = { width: canvas.width, height: canvas.height, title };
      downloadPng(canvas, projector ? "wsgiscope-timeline-projector.png" : "wsgiscope-timeline.png");
    });
  }
}
bindRunInfo();
if (body.dataset.autostart) startFromRunInfo(false);

// --- drawing loop -------------------------------------------------------------------------
let dirty = true, lastNow = performance.now(), renderedLine = -2, lastMetrics = 0, lastHeat = 0;
let askedRestAt = 0;  // when the page last asked again for frames it waits for

function sizeAll() {
  timeline.layout();
  timeline.resize();
  if (labStore.meta) { labTimeline.layout(); labTimeline.resize(); }
  house.resize();
  heatmap.resize();
  metrics.resize();
  dirty = true;
}
window.addEventListener("resize", sizeAll);

function frame(now) {
  const dt = now - lastNow;
  lastNow = now;
  if (player.playing && store.meta) {
    const limit = store.lastT;
    if (player.speed === Infinity) player.t = limit;
    else player.t = Math.min(player.t + dt * player.speed, limit);
    if (store.complete && player.t >= store.end - 1e-9) {
      player.t = store.end;
      player.playing = false;
      showPlaying(false);
      stream.send({ op: "pause", t: player.t });
    }
    dirty = true;
  } else if (store.meta && !store.meta.partial && !store.complete &&
             player.t > store.lastT + 1e-9 && now - askedRestAt > 1000) {
    // The playhead waits past what the page holds and nothing is coming in: ask again, at
    // most once a second (End pressed while a large run's head showed, then the whole run
    // took its place: the server had been asked only up to the head's end).
    askedRestAt = now;
    stream.send({ op: "seek", t: player.t });
  }
  if (dirty) { draw(now); dirty = false; }
  requestAnimationFrame(frame);
}

function draw(now) {
  const started = performance.now();
  const t = player.t;
  timeline.compose(t);
  if (labStore.meta) labTimeline.compose(t);
  const k = store.frameAt(t);
  house.draw(k, t);
  if (now - lastHeat > 150 || !player.playing) { heatmap.draw(t); lastHeat = now; }
  $("clock").value = fmtClock(t);
  $("clock").textContent = fmtClock(t);
  const scrub = $("scrub");
  if (document.activeElement !== scrub || !scrub.matches(":active")) {
    scrub.value = player.end ? String((t / player.end) * 1000) : "0";
  }
  drawNarration(t);
  lessons.tick();
  lessons.watch(t);
  if (now - lastMetrics > 120 || !player.playing) { metrics.draw(t, k); queueing.draw(t, k); lastMetrics = now; }
  stats.draws++;
  body.dataset.t = t.toFixed(3);
  const took = performance.now() - started;
  if (stats.drawTimes) stats.drawTimes.push(took);
  if (store.n && !stats.firstDrawAt) stats.firstDrawAt = performance.now();
  if (player.playing && stats.playAt && !stats.playFirstDrawAt && t > stats.playT) stats.playFirstDrawAt = performance.now();
}

function drawNarration(t) {
  const idx = store.lineAt(t);
  if (idx === renderedLine) return;
  renderedLine = idx;
  const ol = $("narration");
  ol.textContent = "";
  const from = Math.max(0, idx - 6);
  for (let i = from; i <= idx; i++) {
    const li = document.createElement("li");
    li.textContent = store.lines[i][1];
    li.dataset.t = String(store.lines[i][0]);
    li.title = "Click to go back to this moment";
    if (i === idx) li.className = "current";
    ol.appendChild(li);
  }
  if (idx < 0) {
    const li = document.createElement("li");
    li.textContent = store.meta ? "Press play (space) to start; → steps to the next event." : "";
    ol.appendChild(li);
  }
  body.dataset.line = String(idx);
}

// --- timeline interaction -----------------------------------------------------------------
function bindTimeline(tl, wrap, inspectable) {
  const canvas = tl.canvas, tip = $("tooltip"), cursor = $("cursor");
  let drag = null;
  const pos = (ev) => { const r = canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
  canvas.addEventListener("wheel", (ev) => {
    if (!tl.store.meta) return;
    ev.preventDefault();
    const [x] = pos(ev);
    scale.zoom(ev.deltaY > 0 ? 1.25 : 0.8, scale.t(Math.max(x, scale.left)));
    dirty = true;
  }, { passive: false });
  canvas.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, moved: false }; });
  window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
  canvas.addEventListener("mousemove", (ev) => {
    const [x, y] = pos(ev);
    if (drag && ev.buttons === 1) {
      const dx = ev.clientX - drag.x;
      if (Math.abs(dx) > 2) drag.moved = true;
      if (drag.moved) { scale.pan(-dx * scale.msPerPx); drag.x = ev.clientX; dirty = true; }
    }
    const hit = tl.hit(x, y);
    const top = canvas.offsetTop;
    if (hit && x >= scale.left) {
      tip.hidden = false;
      tip.textContent = hit.text;
      if (tip.parentElement !== wrap) wrap.appendChild(tip);
      if (cursor.parentElement !== wrap) wrap.appendChild(cursor);
      tip.style.left = `${Math.min(x + 14, wrap.clientWidth - tip.offsetWidth - 4)}px`;
      tip.style.top = `${top + y + 14}px`;
      cursor.hidden = false;
      cursor.style.left = `${x}px`;
    } else { tip.hidden = true; cursor.hidden = true; }
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; cursor.hidden = true; });
  canvas.addEventListener("dblclick", () => { scale.fit(); dirty = true; });
  canvas.addEventListener("click", (ev) => {
    if (drag && drag.moved) return;
    const [x, y] = pos(ev);
    if (inspectable && x >= scale.left && lessons.takeClick(scale.t(x))) return;  // a click question
    const hit = tl.hit(x, y);
    if (hit && hit.req !== undefined) {
      if (inspectable) {
        tl.selected = hit.req;
        stream.send({ op: "inspect", id: hit.req });
      }
      dirty = true;
    } else if (x >= scale.left && y < 24) {
      player.seek(scale.t(x));  // click on the time axis: jump there
    }
  });
}
bindTimeline(timeline, $("timeline-wrap"), true);
function inspect(id) {
  timeline.selected = id;
  stream.send({ op: "inspect", id });
  dirty = true;
}
$("slowest").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-req]");
  if (tr) inspect(Number(tr.dataset.req));
});
$("slowest").addEventListener("keydown", (ev) => {
  const tr = ev.target.closest("tr[data-req]");
  if (tr && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); inspect(Number(tr.dataset.req)); }
});
// The timeline from the keyboard: up and down pick the request to inspect.
$("timeline").addEventListener("keydown", (ev) => {
  if (!store.meta || (ev.key !== "ArrowDown" && ev.key !== "ArrowUp")) return;
  ev.preventDefault();
  const n = store.meta.n_requests, cur = timeline.selected;
  inspect(cur < 0 ? 0 : Math.max(0, Math.min(n - 1, cur + (ev.key === "ArrowDown" ? 1 : -1))));
});
$("narration").addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-t]");
  if (li) { if (player.playing) player.pause(); player.seek(Number(li.dataset.t)); }
});
bindTimeline(labTimeline, $("lab-wrap"), false);
bindControls(player);
bindProjector();

// Hover explanations on the house: what each part is and what to look for.
(function bindHouseHelp() {
  const canvas = $("house"), wrap = canvas.parentElement, tip = $("tooltip");
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const text = house.hit(x, y);
    if (!text) { tip.hidden = true; return; }
    if (tip.parentElement !== wrap) wrap.appendChild(tip);
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.max(4, Math.min(x + 14, wrap.clientWidth - tip.offsetWidth - 4))}px`;
    tip.style.top = `${Math.min(y + 14, Math.max(4, wrap.clientHeight - tip.offsetHeight - 4))}px`;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
})();

// The heat map shares the timeline's time axis: wheel zooms, double-click fits, hover explains.
(function bindHeatMap() {
  const canvas = $("heatmap"), wrap = $("heat-wrap"), tip = $("tooltip");
  canvas.addEventListener("wheel", (ev) => {
    if (!store.meta) return;
    ev.preventDefault();
    const x = ev.clientX - canvas.getBoundingClientRect().left;
    scale.zoom(ev.deltaY > 0 ? 1.25 : 0.8, scale.t(Math.max(x, scale.left)));
    dirty = true;
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { scale.fit(); dirty = true; });
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    const text = heatmap.hit(x, y);
    if (!text) { tip.hidden = true; return; }
    if (tip.parentElement !== wrap) wrap.appendChild(tip);
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.max(4, Math.min(x + 14, wrap.clientWidth - tip.offsetWidth - 4))}px`;
    tip.style.top = `${canvas.offsetTop + y + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
})();
window.wsgiscope.heatmap = heatmap;

// --- the lab: run it for real ---------------------------------------------------------------
async function runForReal() {
  const info = $("run-info");
  const button = $("btn-lab");
  const lab = $("lab"), msg = $("lab-message"), bar = $("lab-progress");
  lab.hidden = false;
  msg.className = "lab-message";
  msg.textContent = "Starting the real server…";
  bar.hidden = false; bar.value = 0;
  button.disabled = true;
  try {
    const form = new FormData();
    form.append("scenario", info.dataset.scenario);
    let resp = await fetch("/lab/run", { method: "POST", body: form });
    let data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error ? (data.field ? `${data.field}: ${data.error}` : data.error) : (data.message || `the lab answered ${resp.status}`));
    const id = data.run_id;
    for (;;) {
      await new Promise((r) => setTimeout(r, 400));
      resp = await fetch(`/lab/status/${encodeURIComponent(id)}`);
      data = await resp.json();
      bar.value = data.progress || 0;
      msg.textContent = data.message || data.state;
      if (data.state === "failed") throw new Error(data.message || "the measured run failed");
      if (data.state === "done") break;
    }
    resp = await fetch(`/lab/result/${encodeURIComponent(id)}`);
    const result = await resp.json();
    resp = await fetch(body.dataset.timelineApi, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ trace: result.trace }),
    });
    const enc = await resp.json();
    if (!resp.ok) throw new Error(enc.error || "the measured trace could not be drawn");
    labStore.reset(enc.meta);
    labStore.ingest(enc.frames);
    labStore.complete = true;
    $("lab-wrap").hidden = false;
    labTimeline.layout();
    scale.fit(Math.max(store.end, labStore.end));
    sizeAll();
    showComparison(result.comparison || {});
    msg.textContent = "Measured. Same time axis as the simulated run above.";
    bar.hidden = true;
  } catch (err) {
    msg.className = "lab-message bad";
    msg.textContent = String(err.message || err);
    bar.hidden = true;
  } finally {
    button.disabled = false;
  }
}

function showComparison(cmp) {
  const box = $("comparison");
  box.textContent = "";
  const sum = cmp.summary || {};
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
  const ms = (v) => (v === null || v === undefined ? "–" : fmtDur(v));
  if (sum.requests !== undefined) {
    const tol = sum.tolerance || {};
    const verdict = sum.agrees
      ? `The simulation agrees with this machine: all ${sum.requests} requests finished within ${tol.pct} % or ${tol.ms} ms of the simulated time.`
      : `${sum.within_tolerance} of ${sum.requests} requests finished within ${tol.pct} % or ${tol.ms} ms of the simulated time${sum.status_mismatches ? `; ${sum.status_mismatches} ended differently` : ""}.`;
    box.appendChild(el("p", verdict, sum.agrees ? "verdict good" : "verdict"));
    box.appendChild(el("p", `Last response: simulated ${ms(sum.makespan_sim_ms)}, measured ${ms(sum.makespan_measured_ms)}. Median error per request ${ms(sum.median_abs_error_ms)}, largest ${ms(sum.max_abs_error_ms)}.`));
  }
  // what made this measurement less trustworthy (other programs, the host's steal, another
  // core count): said beside the verdict, not left to the command line
  for (const c of sum.cautions || []) box.appendChild(el("p", `Caution: ${c}.`, "caution"));
  if (sum.sim && sum.measured) {
    const table = el("table");
    const head = table.createTHead().insertRow();
    for (const c of ["", "simulated", "measured"]) head.appendChild(el("th", c));
    const names = { completed: "completed", failed: "failed", p50_ms: "latency p50", p95_ms: "latency p95", max_ms: "latency max", max_backlog: "max backlog", syn_retries: "SYN retransmits", gil_wait_pct: "GIL wait %" };
    for (const [k, label] of Object.entries(names)) {
      if (!(k in sum.sim)) continue;
      const row = table.insertRow();
      row.insertCell().textContent = label;
      for (const side of [sum.sim, sum.measured]) {
        const v = side[k];
        row.insertCell().textContent = k.endsWith("_ms") ? ms(v) : v === null || v === undefined ? "–" : String(v);
      }
    }
    box.appendChild(table);
  }
  if (Array.isArray(cmp.rows) && cmp.rows.length) {
    const details = el("details");
    details.appendChild(el("summary", "Request by request"));
    const table = el("table");
    const head = table.createTHead().insertRow();
    for (const c of ["user", "path", "simulated", "measured", "difference", ""]) head.appendChild(el("th", c));
    for (const r of cmp.rows.slice(0, 500)) {
      const row = table.insertRow();
      row.insertCell().textContent = String(r.id + 1);
      row.insertCell().textContent = r.path;
      row.insertCell().textContent = ms(r.sim_ms);
      row.insertCell().textContent = ms(r.measured_ms);
      row.insertCell().textContent = r.error_ms === null ? "–" : `${r.error_ms > 0 ? "+" : ""}${fmtDur(r.error_ms)}`;
      row.insertCell().textContent = r.within ? "✓" : "✗";
    }
    details.appendChild(table);
    box.appendChild(details);
  }
}

window.wsgiscope.showComparison = showComparison;

document.addEventListener("click", (ev) => {
  if (ev.target.id === "btn-lab") runForReal();
});

sizeAll();
requestAnimationFrame(frame);
