// Rooms: the teacher's page drives, the class's pages follow (app/rooms.py).
//
// The teacher opens a room (a short code, a link and a QR code); each student's page loads
// the teacher's run on its own stream -- the run is cached on the server, so the class costs
// one simulation -- and from then on follows small "play" messages: playhead, playing,
// speed, the request inspected, the question's state. A student can step away to explore
// and rejoin. Predictions go to the teacher's page, which shows them as a histogram.

import qrcode from "../vendor/qrcode-generator-2.0.4.mjs";
import { fmtDur } from "./scale.js";
import { evaluate } from "./lesson.js";
import { isTextField } from "./controls.js";

const $ = (id) => document.getElementById(id);
const KEY = "wsgiscope-room";  // sessionStorage: {code, secret} of the room this tab opened

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

export class Room {
  constructor({ store, player, timeline, stream, lessons, inspect }) {
    this.store = store;
    this.player = player;
    this.timeline = timeline;
    this.stream = stream;
    this.lessons = lessons;
    this.inspect = inspect;
    this.code = "";
    this.role = "";          // teacher | student
    this.ws = null;
    this.id = "";
    this.following = true;
    this.students = new Set();
    this.answers = new Map();  // student id -> {lesson, kind, value}
    this.lastRun = null;       // the teacher's last run message (students)
    this.lastPlay = null;      // ... and play message, with the time it came
    this.loadedRun = "";       // the run message this page has loaded (students)
    this.sent = null;          // what the teacher last said about playback
    this.delay = 250;
    $("btn-room").addEventListener("click", () => this.onButton());
    document.addEventListener("wsgiscope:answer", (ev) => this.sendAnswer(ev.detail));
    const params = new URLSearchParams(location.search);
    const code = (params.get("room") || "").toUpperCase();
    if (code) {
      const mine = this.saved();
      if (mine && mine.code === code) this.join(code, "teacher", mine.secret);
      else this.join(code, "student");
    }
    setInterval(() => this.tick(), 200);
    this.bindUserActs();
  }

  // A student who takes the controls steps away from the teacher (the page's own moves, made
  // for the teacher, are not events of the user's).
  bindUserActs() {
    const acts = [["btn-play", "click"], ["btn-fwd", "click"], ["btn-back", "click"], ["btn-start", "click"],
      ["btn-end", "click"], ["scrub", "input"], ["speed", "change"]];
    for (const [id, type] of acts) $(id).addEventListener(type, (ev) => { if (ev.isTrusted) this.userActed(); });
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || isTextField(ev.target)) return;
      if ([" ", "ArrowLeft", "ArrowRight", "Home", "End"].includes(ev.key)) this.userActed();
    });
  }

  saved() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch { return null; }
  }

  async onButton() {
    if (this.role === "teacher") { this.showOverlay("join"); return; }
    if (this.role === "student") { if (this.following) this.stepAway(); else this.rejoin(); return; }
    const resp = await fetch("/rooms", { method: "POST" });
    const data = await resp.json();
    if (!resp.ok) { this.bar(data.error || "the room could not be opened"); return; }
    sessionStorage.setItem(KEY, JSON.stringify({ code: data.code, secret: data.secret }));
    const url = new URL(location.href);
    url.searchParams.set("room", data.code);
    history.replaceState(history.state, "", url);
    this.join(data.code, "teacher", data.secret);
    this.showOverlay("join");
  }

  joinUrl() { return `${location.origin}/r/${this.code}`; }

  join(code, role, secret) {
    this.code = code;
    this.role = role;
    this.secret = secret || "";
    document.body.dataset.room = role;
    const b = $("btn-room");
    b.textContent = role === "teacher" ? `Room ${code}` : "Step away";
    b.setAttribute("aria-pressed", "true");
    this.connect();
    this.render();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/rooms/${this.code}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 250;
      ws.send(JSON.stringify({ op: "hello", role: this.role, secret: this.secret || undefined }));
    };
    ws.onmessage = (ev) => { let m; try { m = JSON.parse(ev.data); } catch { return; } this.onMessage(m); };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.connected = false;
      this.render();
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 4000);
    };
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.connected) { this.ws.send(JSON.stringify(msg)); return true; }
    return false;
  }

  onMessage(m) {
    if (m.type === "welcome") {
      this.connected = true;
      this.id = m.id;
      if (this.role === "teacher") { this.sent = null; this.sendRun(); }
      this.render();
      return;
    }
    if (m.type === "error") { this.bar(m.error, true); return; }
    if (m.from && m.from === this.id) return;  // our own message, back from the room
    if (this.role === "teacher") {
      if (m.type === "hello") { this.students.add(m.from); this.sendRun(); this.sent = null; }
      else if (m.type === "bye") { this.students.delete(m.from); }
      else if (m.type === "answer") { this.students.add(m.from); this.answers.set(m.from, m); }
      this.render();
      return;
    }
    // a student
    if (m.type === "run") { this.lastRun = m; if (this.following) this.loadRun(); }
    else if (m.type === "play") { this.lastPlay = { ...m, at: performance.now() }; if (this.following) this.applyPlay(); }
    else if (m.type === "closed") { this.bar("The teacher closed the room: the page is yours now."); this.following = false; }
    this.render();
  }

  // --- the teacher ---------------------------------------------------------------------
  runMessage() {
    const run = this.player.run;
    if (!run) return null;
    const lesson = $("lesson");
    return { op: "run", lesson: lesson ? lesson.dataset.name || "" : "", scenario: run.scenario, seed: run.seed };
  }

  sendRun() {
    const msg = this.runMessage();
    if (!msg) return;
    this.sentRun = JSON.stringify(msg);
    this.send(msg);
  }

  playState() {
    const p = this.player;
    return { op: "play", t: Math.max(0, p.t), playing: p.playing, speed: p.speedValue(),
      inspect: this.timeline.selected, question: this.lessons.state };
  }

  // Every 200 ms: the teacher says what changed; a student's page keeps in step.
  tick() {
    if (this.role === "teacher" && this.connected) {
      const run = this.runMessage();
      if (run && JSON.stringify(run) !== this.sentRun) { this.sendRun(); this.answers.clear(); this.render(); }
      const now = this.playState(), last = this.sent;
      const expected = last ? last.t + (last.playing && last.speed !== "max" ? (performance.now() - last.at) * last.speed : 0) : -1;
      const changed = !last || now.playing !== last.playing || now.speed !== last.speed || now.inspect !== last.inspect ||
        now.question !== last.question || Math.abs(now.t - expected) > 60 || (now.playing && performance.now() - last.at > 3000);
      if (changed && this.send(now)) this.sent = { ...now, at: performance.now() };
    } else if (this.role === "student" && this.following) {
      if (this.lastPlay && this.pendingPlay) this.applyPlay();
      this.askForTheRest();
    }
  }

  // A following page holds the whole run (the teacher may jump anywhere, and a quiz's
  // answer is read from it): while frames are missing and nothing is playing them in, ask
  // again, at most once a second (a head replaced by its whole run can leave some unsent).
  askForTheRest() {
    const s = this.store, now = performance.now();
    if (!s.meta || s.meta.partial || s.complete || this.player.playing) return;
    if (now - (this.askedRestAt || 0) < 1000) return;
    this.askedRestAt = now;
    this.stream.send({ op: "seek", t: s.end });
  }

  // --- a student ---------------------------------------------------------------------
  loadRun() {
    const m = this.lastRun;
    const sig = JSON.stringify([m.scenario, m.seed]);
    const cur = this.player.run ? JSON.stringify([this.player.run.scenario, this.player.run.seed]) : "";
    this.pendingPlay = true;
    if (sig === cur) { this.loadedRun = sig; return; }
    this.loadedRun = sig;
    const scenario = { ...m.scenario };
    if (m.seed !== null && m.seed !== undefined) scenario.seed = m.seed;
    // the same form the page imports a file with: the server names the lesson, the run
    // comes from the shared cache
    htmx.ajax("POST", "/scenario/import", { target: "#scenario-form", swap: "outerHTML", values: { text: JSON.stringify(scenario) } });
  }

  // Put the playhead where the teacher's is (once this page holds the teacher's run).
  applyPlay() {
    const m = this.lastPlay, s = this.store, p = this.player;
    if (!m || !p.run || !s.meta) { this.pendingPlay = true; return; }
    if (this.lastRun && JSON.stringify([p.run.scenario, p.run.seed]) !== this.loadedRun) { this.pendingPlay = true; return; }
    this.pendingPlay = false;
    // the whole run at once (from the shared cache): after this only play messages flow
    if (!s.complete && this.askedAll !== s.key) { this.askedAll = s.key; this.stream.send({ op: "seek", t: s.end }); }
    const speed = m.speed === "max" ? "max" : String(m.speed);
    if ($("speed").value !== speed) { $("speed").value = speed; p.setSpeed(speed); }
    const behind = m.playing && m.speed !== "max" ? (performance.now() - m.at) * m.speed : 0;
    const t = Math.min(m.t + behind, s.end);
    if (m.playing) {
      if (Math.abs(p.t - t) > 80) p.seek(t);
      if (!p.playing) p.play();
    } else {
      if (p.playing) p.pause();
      if (Math.abs(p.t - t) > 1e-6) p.seek(t);
    }
    if (m.inspect >= 0 && m.inspect !== this.timeline.selected && m.inspect < s.meta.n_requests) this.inspect(m.inspect);
    if (m.question === "reveal" && this.lessons.state !== "reveal" && this.lessons.question) this.lessons.revealNow();
  }

  stepAway(why) {
    if (this.role !== "student" || !this.following) return;
    this.following = false;
    $("btn-room").textContent = "Rejoin";
    this.bar(why || "");
    this.render();
  }

  rejoin() {
    this.following = true;
    $("btn-room").textContent = "Step away";
    if (this.lastRun) this.loadRun();
    this.pendingPlay = true;
    this.render();
  }

  // A student who drives the player steps away from the teacher's.
  userActed() { if (this.role === "student" && this.following && this.connected) this.stepAway("You took the controls: you are on your own now."); }

  sendAnswer(detail) {
    if (this.role !== "student" || !detail || detail.kind === "discuss") return;
    this.send({ op: "answer", lesson: detail.lesson || "", kind: detail.kind, value: Number(detail.value) });
  }

  // --- what the page shows -------------------------------------------------------------
  bar(note, bad) { this.note = note; this.noteBad = !!bad; this.render(); }

  render() {
    const bar = $("room-bar");
    bar.hidden = !this.role;
    if (!this.role) return;
    bar.textContent = "";
    bar.dataset.role = this.role;
    const link = this.joinUrl();
    if (this.role === "teacher") {
      bar.append(el("strong", `Room ${this.code}`), el("span", ` · ${link} · `, "room-link"));
      const n = this.students.size, lesson = $("lesson").dataset.name;
      const answers = [...this.answers.values()].filter((a) => a.lesson === lesson).length;
      bar.append(el("span", `${n} following · ${answers} answer${answers === 1 ? "" : "s"}`, "room-count"));
      const qr = el("button", "QR code", "ghost small"); qr.type = "button";
      qr.addEventListener("click", () => this.showOverlay("join"));
      const hist = el("button", "Answers", "ghost small"); hist.type = "button"; hist.id = "room-answers";
      hist.addEventListener("click", () => this.showOverlay("answers"));
      const close = el("button", "Close room", "ghost small"); close.type = "button";
      close.addEventListener("click", () => this.close());
      bar.append(qr, hist, close);
    } else {
      const where = this.following ? `Following the teacher · room ${this.code}` : `On your own · room ${this.code}`;
      bar.append(el("strong", where));
      if (!this.following && this.lastPlay) bar.append(el("span", ` · the teacher is at T = ${(this.lastPlay.t / 1000).toFixed(3)} s`));
      const b = el("button", this.following ? "Step away" : "Rejoin", "ghost small"); b.type = "button"; b.id = "room-follow";
      b.addEventListener("click", () => (this.following ? this.stepAway() : this.rejoin()));
      bar.append(b);
    }
    if (!this.connected) bar.append(el("span", " · connecting…", "muted"));
    if (this.note) bar.append(el("span", ` ${this.note}`, this.noteBad ? "room-note bad" : "room-note"));
    const ov = $("room-overlay");
    if (!ov.hidden && ov.dataset.kind === "answers") this.drawAnswers();
  }

  close() {
    this.send({ op: "close" });
    sessionStorage.removeItem(KEY);
    const url = new URL(location.href);
    url.searchParams.delete("room");
    history.replaceState(history.state, "", url);
    const ws = this.ws; this.ws = null; if (ws) ws.close();
    this.role = ""; this.code = "";
    delete document.body.dataset.room;
    $("btn-room").textContent = "Room";
    $("btn-room").setAttribute("aria-pressed", "false");
    $("room-overlay").hidden = true;
    this.render();
  }

  showOverlay(kind) {
    const ov = $("room-overlay");
    ov.dataset.kind = kind;
    ov.hidden = false;
    ov.textContent = "";
    const closeB = el("button", "✕", "ghost room-close"); closeB.type = "button";
    closeB.setAttribute("aria-label", "Close");
    closeB.addEventListener("click", () => { ov.hidden = true; $("btn-play").focus(); });
    ov.appendChild(closeB);
    if (kind === "join") {
      const link = this.joinUrl();
      ov.append(el("h2", "Follow on your own screen"), el("p", link, "room-big-link"), el("p", this.code, "room-big-code"));
      const qr = qrcode(0, "M");
      qr.addData(link);
      qr.make();
      const box = el("div", undefined, "room-qr");
      box.innerHTML = qr.createSvgTag({ cellSize: 8, margin: 2, scalable: true });
      const svg = box.querySelector("svg");
      if (svg) { svg.setAttribute("role", "img"); svg.setAttribute("aria-label", `QR code of ${link}`); }
      ov.appendChild(box);
    } else this.drawAnswers();
    closeB.focus();
  }

  // The class's predictions for the lesson on screen, as a histogram (and, once the run
  // has played, the run's own answer marked).
  drawAnswers() {
    const ov = $("room-overlay");
    [...ov.querySelectorAll(".room-hist, h2, .muted")].forEach((e) => e.remove());
    const q = this.lessons.question, lesson = $("lesson").dataset.name;
    ov.appendChild(el("h2", q ? `The class predicts: ${q.prompt}` : "No question in this lesson"));
    if (!q || q.kind === "discuss") return;
    const answers = [...this.answers.values()].filter((a) => a.lesson === lesson).map((a) => a.value);
    const bins = this.bins(q, answers);
    const truth = this.lessons.state === "reveal" && this.store.complete ? this.truth(q) : null;
    const box = el("div", undefined, "room-hist");
    box.setAttribute("role", "list");
    const most = Math.max(1, ...bins.map((b) => b.n));
    for (const b of bins) {
      const row = el("div", undefined, "room-hist-row");
      row.setAttribute("role", "listitem");
      row.dataset.n = String(b.n);
      const bar = el("span", undefined, "room-hist-bar");
      bar.style.width = `${(100 * b.n) / most}%`;
      const right = truth !== null && truth >= b.lo && truth < b.hi;
      row.append(el("span", b.label, "room-hist-label"), el("span", undefined, "room-hist-track"), el("span", String(b.n), "room-hist-n"));
      row.children[1].appendChild(bar);
      if (right) { row.classList.add("right"); row.append(el("span", "← the run", "room-hist-truth")); }
      box.appendChild(row);
    }
    ov.appendChild(box);
    ov.appendChild(el("p", `${answers.length} answer${answers.length === 1 ? "" : "s"} from ${this.students.size} following`, "muted"));
  }

  truth(q) {
    if (q.kind === "choice") {
      const vals = q.options.map((o) => evaluate(o.value, this.store));
      const best = q.correct === "max" ? Math.max(...vals) : Math.min(...vals);
      return vals.indexOf(best);
    }
    const v = evaluate(q.answer, this.store);
    if (v === null) return null;
    return q.kind === "number" && q.unit === "s" ? v / 1000 : v;
  }

  bins(q, values) {
    if (q.kind === "choice") {
      return q.options.map((o, i) => ({ label: o.label, lo: i, hi: i + 1, n: values.filter((v) => v === i).length }));
    }
    const truth = this.store.complete ? this.truth(q) : null;
    const all = truth === null ? values : [...values, truth];
    if (!all.length) return [];
    let lo = Math.min(...all), hi = Math.max(...all);
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const raw = (hi - lo) / 8, pow = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
    const start = Math.floor(lo / step) * step, out = [];
    for (let a = start; a <= hi + 1e-9; a += step) {
      const label = q.kind === "click" ? `${fmtDur(a)}–${fmtDur(a + step)}` : `${+a.toPrecision(6)}–${+(a + step).toPrecision(6)}${q.unit ? ` ${q.unit}` : ""}`;
      out.push({ label, lo: a, hi: a + step, n: values.filter((v) => v >= a && v < a + step).length });
    }
    return out;
  }
}
