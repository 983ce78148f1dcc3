// The analytic panel of a queueing run: the mean wait and Little's law (L = λW) measured on
// the run beside what queueing theory predicts (Erlang C, for an M/M/c queue), and how
// much a short stretch of the run scatters around it. Every measured figure comes from the
// run the page holds; the prediction is computed from the scenario, never typed in.

const $ = (id) => document.getElementById(id);

// The M/M/c queue a scenario is, or null: gunicorn sync workers (c servers) behind one
// Poisson stream of one path whose endpoint is a single exponential I/O wait.
export function mmcModel(scenario) {
  if (!scenario) return null;
  const server = scenario.server || {}, load = scenario.workload || [];
  if (server.kind !== "gunicorn" || (server.worker_class || "sync") !== "sync") return null;
  if (load.length !== 1 || !load[0].poisson) return null;
  const w = load[0];
  const paths = w.path ? [w.path] : Object.keys(w.paths || {});
  if (paths.length !== 1) return null;
  const segs = (scenario.endpoints || {})[paths[0]] || [];
  if (segs.length !== 1 || !segs[0].io_ms || typeof segs[0].io_ms !== "object" || segs[0].io_ms.exp === undefined) return null;
  const c = server.workers || 1, lambda = w.poisson.rate_per_s, mu = 1000 / segs[0].io_ms.exp;
  if (!(lambda < c * mu)) return { c, lambda, mu, unstable: true };
  return { c, lambda, mu, ...erlangC(c, lambda / mu, c * mu - lambda) };
}

// Erlang C: the probability that an arrival waits, and the mean wait (s), for c servers at
// offered load a = λ/μ; `slack` = cμ − λ.
export function erlangC(c, a, slack) {
  let term = 1, sum = 1;  // a^k / k!, summed for k < c
  for (let k = 1; k < c; k++) { term *= a / k; sum += term; }
  const top = term * (a / c) / (1 - a / c);  // a^c / c! · 1 / (1 − ρ)
  const p = top / (sum + top);
  return { pWait: p, wq: p / slack, rho: a / c };
}

function mean(v) { return v.length ? v.reduce((x, y) => x + y, 0) / v.length : null; }

// The figures measured on the run up to time t (ms), frame k.
export function measure(store, t, k, windowMs = store.end >= 1200000 ? 120000 : Math.max(store.end / 6, 1000)) {
  const recs = store.done, waits = [], lats = [], windows = new Map();
  let firstSent = Infinity, lastSent = -Infinity, sent = 0;
  for (const r of recs) {
    if (r.sent > t) continue;
    sent++;
    firstSent = Math.min(firstSent, r.sent); lastSent = Math.max(lastSent, r.sent);
    if (r.accepted !== null && r.accepted <= t) {
      const w = r.accepted - r.sent;
      waits.push(w);
      const b = Math.floor(r.sent / windowMs);
      if (!windows.has(b)) windows.set(b, []);
      windows.get(b).push(w);
    }
    if (r.finished !== null && r.finished <= t) lats.push(r.finished - r.sent);
  }
  if (sent < 2 || k < 0) return null;
  const lambda = (sent - 1) / ((lastSent - firstSent) / 1000);  // arrivals per second
  // time averages from the frames (in the system) and the exact backlog (waiting)
  let inSys = 0;
  for (let i = 0; i <= k; i++) inSys += store.inflight[i];
  const L = inSys / (k + 1);
  const Lq = backlogArea(store, t) / Math.max(t, 1e-9);
  // whole windows only: their mean waits show how a short run scatters
  const full = [...windows.entries()].filter(([b]) => (b + 1) * windowMs <= t).map(([, v]) => mean(v));
  let ci = null;
  if (full.length >= 5) {
    const m = mean(full), sd = Math.sqrt(full.reduce((s, x) => s + (x - m) ** 2, 0) / (full.length - 1));
    ci = 1.96 * sd / Math.sqrt(full.length) / 1000;  // batch means: a 95 % interval, in s
  }
  return {
    n: sent, lambda, L, Lq,
    W: lats.length ? mean(lats) / 1000 : null,
    Wq: waits.length ? mean(waits) / 1000 : null,
    pWait: waits.length ? waits.filter((w) => w > 1).length / waits.length : null,
    windows: full.length, windowMin: full.length ? Math.min(...full) / 1000 : null,
    windowMax: full.length ? Math.max(...full) / 1000 : null, ci, windowS: windowMs / 1000,
  };
}

// ∫ backlog dt from 0 to t, from the exact change points.
function backlogArea(store, t) {
  const q = store.bl;
  let area = 0;
  for (let i = 0; i < q.t.length && q.t[i] < t; i++) {
    const next = i + 1 < q.t.length ? Math.min(q.t[i + 1], t) : t;
    area += q.depth[i] * (next - q.t[i]);
  }
  return area;
}

const s3 = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(3)} s`);
const n2 = (v) => (v === null || v === undefined ? "–" : v.toFixed(2));

export class Queueing {
  constructor(store) {
    this.store = store;
    this.el = $("queueing");
    this.model = null;
    this.key = "";
  }

  // A new run: is it a queue worth a panel (a Poisson workload)?
  setScenario(scenario) {
    const load = (scenario && scenario.workload) || [];
    this.poisson = load.some((w) => w.poisson);
    this.model = mmcModel(scenario);
    this.el.hidden = !this.poisson;
    this.key = "";
  }

  draw(t, k) {
    if (!this.poisson || !this.store.meta) return;
    const key = `${this.store.version}|${k}|${this.store.doneAt(t)}`;
    if (key === this.key) return;
    this.key = key;
    const m = measure(this.store, t, k), mod = this.model;
    const el = this.el;
    el.textContent = "";
    const add = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; el.appendChild(e); return e; };
    add("h3", mod && !mod.unstable ? `Queueing theory: an M/M/${mod.c} queue` : "Queueing: Little's law");
    if (!m) { add("p", "Figures appear as the run plays.", "muted"); return; }
    const table = add("table", undefined, "q-table");
    const head = table.createTHead().insertRow();
    for (const h of ["", "this run (so far)", mod && !mod.unstable ? "Erlang C" : ""]) head.appendChild(Object.assign(document.createElement("th"), { textContent: h }));
    const row = (name, mine, theirs, help) => {
      const r = table.insertRow();
      r.title = help;
      r.insertCell().textContent = name;
      r.insertCell().textContent = mine;
      r.insertCell().textContent = theirs;
    };
    const model = mod && !mod.unstable ? mod : null;
    row("mean wait to be accepted (Wq)", `${s3(m.Wq)}${m.ci !== null ? ` ± ${m.ci.toFixed(3)}` : ""}`, model ? s3(model.wq) : "",
      "From sending the request to a worker accepting it, averaged over the requests accepted so far. ± is a 95 % interval from the spread of the run's windows (batch means).");
    row("share that waited", m.pWait === null ? "–" : `${(100 * m.pWait).toFixed(1)} %`, model ? `${(100 * model.pWait).toFixed(1)} %` : "",
      "Requests that found every worker busy and waited (more than 1 ms) before being accepted.");
    row("arrival rate λ", `${m.lambda.toFixed(2)} /s`, model ? `${model.lambda.toFixed(2)} /s` : "", "Requests sent per second of the run.");
    if (model) row("utilisation ρ = λ / cμ", "", `${(100 * model.rho).toFixed(1)} %`, "How busy the workers are on average: at 87.5 % the queue comes and goes.");
    // Little's law, twice: everyone in the system, and those waiting
    const lw = m.W === null ? null : m.lambda * m.W;
    const lwq = m.Wq === null ? null : m.lambda * m.Wq;
    const agree = (a, b) => (a !== null && b !== null && Math.abs(a - b) <= 0.1 * Math.max(Math.abs(b), 0.05) ? " ✓" : "");
    const little = add("p", "", "q-little");
    little.title = "Little's law holds for any stable queue: the time-average number of requests in the system (L, from the frames) equals the arrival rate times the mean time each spends there (W).";
    little.textContent = `Little's law: L = ${n2(m.L)} in the system on average; λ·W = ${m.lambda.toFixed(2)}/s × ${s3(m.W)} = ${n2(lw)}${agree(m.L, lw)}. Waiting: Lq = ${n2(m.Lq)}; λ·Wq = ${n2(lwq)}${agree(m.Lq, lwq)}.`;
    if (m.windows >= 2) {
      const spread = add("p", "", "q-spread");
      spread.title = "The run cut into windows by when requests were sent: each window's own mean wait. A short run is one such window.";
      const span = m.windowS >= 60 ? `${+(m.windowS / 60).toFixed(1)} minutes` : `${m.windowS.toFixed(0)} s`;
      spread.textContent = `Spread: ${m.windows} windows of ${span} give mean waits from ${s3(m.windowMin)} to ${s3(m.windowMax)}: a short run can land anywhere in there.`;
    }
    if (mod && mod.unstable) add("p", `λ ≥ cμ: the queue grows without bound; Erlang C does not apply.`, "verdict bad");
  }
}
