// The lesson around a run: the picker kept in step, the tour (next / previous lesson, from
// the keyboard too), the question asked before the run plays and checked against the run
// when it has played, the takeaway, and the focus the timeline zooms to.
//
// A question's answer is never in the lesson file: the file holds a query (see
// simulator/lesson.py) and this module reads the answer from the run the page holds.

import { fmtDur } from "./scale.js";
import { isTextField, focusPlayer } from "./controls.js";
import { reducedMotion } from "./projector.js";

const $ = (id) => document.getElementById(id);

// --- queries over the run ---------------------------------------------------------------

const PER_REQUEST = {
  latency: (r) => (r.finished === null ? null : r.finished - r.sent),
  finished: (r) => r.finished,
  wait: (r) => (r.accepted === null ? null : r.accepted - r.sent),
  gil_wait: (r) => r.gilWait,
};

// The value of a query on the run in `store` (ms for times, counts otherwise), or null.
export function evaluate(query, store) {
  const recs = store.done;
  if (query.of in PER_REQUEST) {
    const get = PER_REQUEST[query.of];
    if (query.user !== undefined) {
      const r = store.byId.get(query.user - 1);
      return r ? get(r) : null;
    }
    const vals = recs.filter((r) => !query.path || r.path === query.path).map(get).filter((v) => v !== null);
    if (!vals.length) return null;
    vals.sort((a, b) => a - b);
    if (query.stat === "mean") return vals.reduce((a, b) => a + b, 0) / vals.length;
    if (query.stat === "min") return vals[0];
    if (query.stat === "max") return vals[vals.length - 1];
    const mid = (vals.length - 1) / 2;
    return (vals[Math.floor(mid)] + vals[Math.ceil(mid)]) / 2;
  }
  if (query.of === "makespan") return recs.reduce((m, r) => (r.finished === null ? m : Math.max(m, r.finished)), 0);
  if (query.of === "max_backlog") {
    const s = store.meta && store.meta.summary;
    return s && s.max_backlog !== undefined ? s.max_backlog : store.backlogAt(store.end).peak;
  }
  if (query.of === "failed") return recs.filter((r) => r.status !== "ok").length;
  if (query.of === "completed") return recs.filter((r) => r.status === "ok").length;
  return null;
}

const TIME_METRICS = new Set(["latency", "finished", "wait", "gil_wait", "makespan"]);

// What a query is, in words ("user 10's latency").
export function describeQuery(q) {
  const what = { latency: "latency", finished: "response time", wait: "wait to be accepted", gil_wait: "wait for the GIL",
    makespan: "time of the last response", max_backlog: "deepest backlog", failed: "failed requests", completed: "completed requests" }[q.of] || q.of;
  if (q.user !== undefined) return `user ${q.user}'s ${what}`;
  if (q.stat) return `${q.stat} ${what}${q.path ? ` of ${q.path}` : ""}`;
  return what;
}

// A query's value (ms) in the question's unit.
function inUnit(v, unit) { return unit === "s" ? v / 1000 : v; }
function showValue(v, q) {
  if (v === null || v === undefined) return "–";
  const timeish = q.answer ? TIME_METRICS.has(q.answer.of) : false;
  if (q.kind === "number" && q.unit === "s") return `${(v / 1000).toFixed(3)} s`;
  if (q.kind === "number" && q.unit === "ms") return `${v.toFixed(1)} ms`;
  return timeish || q.kind === "click" ? fmtDur(v) : String(Math.round(v * 100) / 100);
}

// Is `guess` (in the question's unit; ms for a click) right for the run in `store`?
export function check(question, guess, store) {
  const q = question;
  if (q.kind === "choice") {
    const vals = q.options.map((o) => evaluate(o.value, store));
    const known = vals.filter((v) => v !== null);
    if (!known.length) return { ok: null, truth: null, vals };
    const best = q.correct === "max" ? Math.max(...known) : Math.min(...known);
    const right = vals.indexOf(best);
    return { ok: guess === right, truth: right, vals };
  }
  const truth = evaluate(q.answer, store);
  if (truth === null || guess === null || guess === undefined || Number.isNaN(guess)) return { ok: null, truth };
  const tol = q.tolerance === undefined ? 0.15 : q.tolerance;
  if (q.kind === "click") {
    const slack = Math.max(Math.abs(truth) * tol, store.end * 0.02);
    return { ok: Math.abs(guess - truth) <= slack, truth };
  }
  const t = inUnit(truth, q.unit || (TIME_METRICS.has(q.answer.of) ? "ms" : ""));
  const floor = q.unit === "s" ? 0.05 : q.unit === "ms" ? 1 : 0.5;
  return { ok: Math.abs(guess - t) <= Math.max(Math.abs(t) * tol, floor), truth };
}

// --- the lesson on the page --------------------------------------------------------------

export class Lessons {
  constructor({ store, player, scale, timeline, stream, redraw }) {
    this.store = store;
    this.player = player;
    this.scale = scale;
    this.timeline = timeline;
    this.stream = stream;
    this.redraw = redraw;
    this.data = {};          // the current #lesson's data
    this.question = null;
    this.state = "none";     // none | quiet (no question) | ask | wait | reveal | done
    this.guess = null;       // number (question's unit), option index, or time (ms)
    this.focusDone = "";     // the run key whose focus was applied
    this.revealWhenComplete = false;
    this.bindKeys();
    const prev = $("tour-prev"), next = $("tour-next");
    if (prev) prev.addEventListener("click", () => this.go(-1));
    if (next) next.addEventListener("click", () => this.go(1));
    $("btn-focus").addEventListener("click", () => this.toggleFocus());
  }

  // A fresh #lesson (first load, a lesson picked, a run simulated or imported).
  load(el) {
    const d = el.dataset;
    this.data = { ...d };
    // the picker follows: the lesson, or "your scenario (from ...)"
    const select = $("preset"), own = $("preset-own");
    own.textContent = d.ownLabel || "— your own scenario —";
    own.hidden = !!d.name;
    select.value = d.name || "";
    // the tour
    for (const [id, name, title, words] of [["tour-prev", d.prev, d.prevTitle, "Previous"], ["tour-next", d.next, d.nextTitle, "Next"]]) {
      const b = $(id);
      if (!b) continue;
      b.disabled = !name;
      b.title = name ? `${words} lesson (${id === "tour-next" ? "N" : "P"}): ${title}` : `No ${words.toLowerCase()} lesson`;
    }
    const pos = $("tour-pos");
    if (pos) pos.textContent = d.position && d.position !== "0" ? `${d.position} / ${d.count}` : "";
    this.question = d.question ? JSON.parse(d.question) : null;
    if (this.question && !this.question.kind) this.question.kind = "discuss";
    this.focus = d.focus ? JSON.parse(d.focus) : null;
    this.guess = null;
    this.focusDone = "";
    this.state = this.question ? "ask" : this.data.takeaway ? "quiet" : "none";
    this.pending = false;
    this.render();
    this.timeline.marks = [];
    const note = $("focus-note");
    note.textContent = this.focus && this.focus.note && this.data.name ? `Look: ${this.focus.note}` : "";
    note.hidden = !note.textContent;
    $("btn-focus").hidden = !(this.focus && this.focus.from_ms !== undefined);
  }

  go(dir) {
    const name = dir > 0 ? this.data.next : this.data.prev;
    if (!name) return;
    const select = $("preset");
    select.value = name;
    select.dispatchEvent(new Event("change", { bubbles: true }));
    focusPlayer();
  }

  bindKeys() {
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || isTextField(ev.target)) return;
      if (ev.key === "f" || ev.key === "F") { ev.preventDefault(); this.toggleFocus(); }
      else if (ev.key === "PageDown" || ev.key === "n" || ev.key === "N") { ev.preventDefault(); this.go(1); }
      else if (ev.key === "PageUp" || ev.key === "p" || ev.key === "P") { ev.preventDefault(); this.go(-1); }
    });
  }

  // --- focus: what the timeline shows first ---
  // Called on every drawn frame; applies the lesson's focus once its run has arrived.
  tick() {
    const s = this.store;
    if (!s.meta || this.focusDone === s.key) return;
    this.focusDone = s.key;
    const f = this.focus;
    if (!f || !this.data.name) return;
    if (f.request !== undefined && f.request <= s.meta.n_requests) {
      this.timeline.selected = f.request - 1;
      this.stream.send({ op: "inspect", id: f.request - 1 });  // its life, in the inspector
    }
    this.timeline.focusLane = f.lane || "";
    if (f.from_ms !== undefined) this.zoomTo(f.from_ms, Math.min(f.to_ms, s.end));
    this.redraw();
  }

  zoomTo(t0, t1) {
    const sc = this.scale;
    if (!(t1 > t0)) return;
    if (reducedMotion()) { sc.t0 = t0; sc.t1 = t1; sc.clamp(); this.redraw(); return; }
    const a0 = sc.t0, a1 = sc.t1, start = performance.now(), dur = 700;
    const step = (now) => {
      const k = Math.min(1, (now - start) / dur), e = k * k * (3 - 2 * k);
      sc.t0 = a0 + (t0 - a0) * e; sc.t1 = a1 + (t1 - a1) * e; sc.clamp();
      this.redraw();
      if (k < 1) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  toggleFocus() {
    const f = this.focus, sc = this.scale;
    if (!f || f.from_ms === undefined) return;
    const whole = sc.t1 - sc.t0 >= sc.end - 1e-6;
    if (whole) this.zoomTo(f.from_ms, Math.min(f.to_ms, this.store.end));
    else this.zoomTo(0, sc.end);
  }

  // --- the question ---
  // Called on every drawn frame: reveal once the run has played to its end.
  watch(t) {
    const s = this.store;
    if (this.state === "reveal") {
      if (this.pending && s.complete) { this.pending = false; this.render(); }
      return;
    }
    if (!["ask", "wait", "quiet"].includes(this.state)) return;
    if (s.meta && s.complete && t >= s.end - 1e-6) { this.state = "reveal"; this.render(); }
  }

  // The player started: a question not answered yet waits for the end.
  onPlay() {
    if (this.state === "ask") { this.state = "wait"; this.render(); }
  }

  // A click on the timeline at time t: taken as the answer to a click question.
  takeClick(t) {
    if (!this.question || this.question.kind !== "click" || this.state !== "ask") return false;
    this.guess = t;
    this.timeline.marks = [{ t, label: "your answer", kind: "guess" }];
    this.redraw();
    this.render();
    return true;
  }

  lockIn(value) {
    this.guess = value;
    this.state = "wait";
    this.render();
    document.dispatchEvent(new CustomEvent("wsgiscope:answer", { detail: { lesson: this.data.name, kind: this.question.kind, value } }));
    focusPlayer();
  }

  revealNow() {
    this.state = "reveal";
    this.player.seek(Infinity);
    this.render();
  }

  render() {
    const box = $("quiz"), q = this.question;
    const story = box.parentElement;
    story.classList.toggle("asking", this.state === "ask" || this.state === "reveal");
    story.classList.toggle("pending", !!q && ["ask", "wait", "reveal"].includes(this.state));
    const shown = this.state === "ask" || this.state === "wait" || this.state === "reveal";
    box.hidden = !shown;
    box.dataset.state = this.state;
    delete box.dataset.result;
    box.textContent = "";
    if (!shown) return;
    const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
    if (this.state === "reveal") {
      const close = el("button", "✕", "ghost quiz-close"); close.type = "button";
      close.setAttribute("aria-label", "Close the answer and show the narration");
      close.addEventListener("click", () => { this.state = "done"; this.render(); focusPlayer(); });
      box.appendChild(close);
    }
    if (!q) {  // no question: the takeaway, once the run has played
      const t = el("p", "", "takeaway");
      t.append(el("strong", "Takeaway: "), this.data.takeaway);
      box.appendChild(t);
      return;
    }
    const prompt = el("p", "", "quiz-prompt");
    if (this.state === "reveal" && q.kind !== "discuss") {
      prompt.append(el("strong", "The run says"));
      prompt.title = q.prompt;
    } else prompt.append(el("strong", q.kind === "discuss" ? "Think: " : "Predict: "), q.prompt);
    if (this.state === "wait") prompt.title = q.prompt;  // shown in two lines while it plays
    box.appendChild(prompt);
    if (this.state === "ask") {
      const form = el("form", undefined, "quiz-form");
      form.addEventListener("submit", (ev) => { ev.preventDefault(); });
      if (q.kind === "number") {
        const input = el("input");
        input.id = "quiz-answer"; input.type = "text"; input.inputMode = "decimal"; input.autocomplete = "off";
        input.setAttribute("aria-label", `Your answer${q.unit ? ` in ${q.unit}` : ""}`);
        form.append(input, el("span", q.unit || "", "quiz-unit"));
        const lock = el("button", "Lock in", "primary"); lock.type = "submit";
        form.addEventListener("submit", () => {
          const v = Number(String(input.value).replace(",", "."));
          if (input.value.trim() === "" || !Number.isFinite(v)) { input.setAttribute("aria-invalid", "true"); input.focus(); return; }
          this.lockIn(v);
        });
        form.appendChild(lock);
      } else if (q.kind === "choice") {
        const group = el("div", undefined, "quiz-options");
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", "Your answer");
        q.options.forEach((o, i) => {
          const b = el("button", o.label, "quiz-option");
          b.type = "button"; b.dataset.option = String(i);
          b.addEventListener("click", () => this.lockIn(i));
          group.appendChild(b);
        });
        form.appendChild(group);
      } else if (q.kind === "click") {
        form.appendChild(el("span", this.guess === null ? "Click the moment on the timeline below." : `Your answer: T = ${(this.guess / 1000).toFixed(3)} s`, "quiz-hint"));
        if (this.guess !== null) {
          const lock = el("button", "Lock in", "primary"); lock.type = "button";
          lock.addEventListener("click", () => this.lockIn(this.guess));
          form.appendChild(lock);
        }
      }
      if (q.kind !== "discuss") {
        const skip = el("button", "Just play", "ghost"); skip.type = "button";
        skip.title = "Skip the prediction: the run plays and shows the answer at the end";
        skip.addEventListener("click", () => { this.state = "wait"; this.render(); this.player.play(); focusPlayer(); });
        form.appendChild(skip);
      }
      box.appendChild(form);
      return;
    }
    if (this.state === "wait") {
      if (q.kind === "discuss") { box.appendChild(el("p", "Think it over while it plays: the run answers at its end.", "quiz-wait")); return; }
      const mine = this.guess === null ? "no prediction" : q.kind === "choice" ? q.options[this.guess].label
        : q.kind === "click" ? `T = ${(this.guess / 1000).toFixed(3)} s` : `${this.guess}${q.unit ? ` ${q.unit}` : ""}`;
      box.appendChild(el("p", `Your prediction: ${mine}. The run answers at its end.`, "quiz-wait"));
      const now = el("button", "Reveal now", "ghost"); now.type = "button";
      now.addEventListener("click", () => this.revealNow());
      box.appendChild(now);
      return;
    }
    // reveal: read the answer from the run
    if (!this.store.complete) { this.pending = true; box.appendChild(el("p", "Reading the answer from the run…", "quiz-wait")); return; }
    const res = q.kind === "discuss" ? { ok: null } : check(q, this.guess, this.store);
    box.dataset.result = res.ok === null ? "none" : res.ok ? "right" : "wrong";
    if (q.kind === "choice") {
      const list = el("ul", undefined, "quiz-answers");
      q.options.forEach((o, i) => {
        const li = el("li", `${o.label}: ${showValue(res.vals[i], { kind: "value", answer: o.value })}`);
        if (i === res.truth) li.className = "right";
        if (i === this.guess) li.append(el("span", " ← your answer", "mine"));
        list.appendChild(li);
      });
      box.appendChild(list);
    } else if (q.kind !== "discuss") {
      const truth = showValue(res.truth, q);
      const mine = this.guess === null ? "" : q.kind === "click" ? ` You clicked T = ${(this.guess / 1000).toFixed(3)} s.`
        : ` You said ${this.guess}${q.unit ? ` ${q.unit}` : ""}.`;
      box.appendChild(el("p", `${describeQuery(q.answer)[0].toUpperCase()}${describeQuery(q.answer).slice(1)}: ${truth}.${mine}`, "quiz-truth"));
      if (q.kind === "click" && res.truth !== null) {
        this.timeline.marks = [...this.timeline.marks.filter((m) => m.kind === "guess"), { t: res.truth, label: "the run", kind: "truth" }];
        this.redraw();
      }
    }
    if (res.ok !== null && this.guess !== null) box.appendChild(el("p", res.ok ? "✓ Right." : "✗ Not quite.", res.ok ? "verdict good" : "verdict bad"));
    if (q.explain) box.appendChild(el("p", q.explain, "quiz-explain"));
    if (this.data.takeaway) {
      const t = el("p", "", "takeaway");
      t.append(el("strong", "Takeaway: "), this.data.takeaway);
      box.appendChild(t);
    }
  }
}
