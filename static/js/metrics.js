// The numbers at the playhead, the latency histogram and the slowest requests so far.
// Every figure is read from what the page holds of the run -- the frames, the request
// spans and the finished records -- the same things the timeline and the house draw, so
// the numbers never contradict what is on screen or in the narration.

import { fmtDur } from "./scale.js";
import { recordsOf } from "./records.js";

// What each figure is and what to look for (the hover text of its row).
export const METRIC_HELP = {
  "completed": "Requests answered successfully so far, of all the requests the workload sends.",
  "failed": "Requests that ended badly: an HTTP 5xx (e.g. a worker killed by --timeout), a reset connection, or a client that gave up. Their latency counts in the figures below.",
  "throughput": "Responses per second of simulated time so far (failed ones included).",
  "latency p50": "Half the finished requests took less than this, from the first SYN to the last byte. Failed requests count too.",
  "latency p95": "95 % of the finished requests took less than this. Watch it jump when a queue forms.",
  "latency p99": "99 % of the finished requests took less than this: the tail a few users feel.",
  "latency max": "The slowest finished request so far, failed ones included.",
  "in flight now": "Requests sent and not yet answered at the playhead: connecting, queued or being served.",
  "backlog now / peak": "Connections waiting in the kernel's accept queue at the playhead, and the most there were at any moment so far (exact, from every request's time in the queue).",
  "GIL wait share": "Of the time threads spent on requests so far (waiting for the GIL, running Python, blocked on I/O), the share spent waiting for the GIL. High means threads queue for one lock.",
  "CPU utilisation": "Busy cores over all cores, averaged over the run so far.",
  "read another request's global": "Requests whose module-global value was overwritten by another request before they read it back.",
};

// The latency figures of the first m records (those finished by the playhead): how many
// have a latency, their p50/p95/p99 (a sorted array's, interpolated) and the largest.
// From the records' prefix structures (records.js): no sort per frame.
export function latencyFigures(store, m) {
  const idx = recordsOf(store);
  const [p50, p95, p99] = idx.quantiles(0, m, [50, 95, 99]);
  return { count: idx.latencies(m), p50, p95, p99, max: idx.maxLatency(m) };
}

// The figures at time t (frame k): [name, value] rows. Exported for the tests' sake.
export function figures(store, t, k) {
  const idx = recordsOf(store);
  const m = Math.min(store.doneAt(t), idx.n);
  const lat = latencyFigures(store, m);
  const ok = idx.ok(m), failed = m - ok;
  const secs = Math.max(t, 1e-9) / 1000;
  const q = store.backlogAt(t);
  const share = store.gilShare(k);
  const why = idx.failedBy(m).map(([w, n]) => (n > 1 ? `${n}× ${w}` : w)).join(", ");
  const rows = [
    ["completed", `${ok} of ${store.meta.n_requests}`],
    ["failed", failed ? `${failed} (${why})` : "0"],
    ["throughput", `${(lat.count / secs).toFixed(2)} req/s`],
    ["latency p50", fmtDur(lat.p50)],
    ["latency p95", fmtDur(lat.p95)],
    ["latency p99", fmtDur(lat.p99)],
    ["latency max", fmtDur(lat.max)],
    ["in flight now", String(store.inflight[k])],
    ["backlog now / peak", `${q.depth} / ${q.peak}`],
    ["GIL wait share", share === null ? "–" : `${(100 * share).toFixed(1)} %`],
    ["CPU utilisation", `${(100 * store.busySum[k] / (store.meta.cores * (k + 1))).toFixed(1)} %`],
  ];
  if (store.meta.summary && store.meta.summary.races > 0) rows.push(["read another request's global", `${idx.raced(m)} of ${m}`]);
  return { rows, latency: lat, m, failed };
}

export class Metrics {
  constructor(store, { dl, histogram, slowest }) {
    this.store = store;
    this.dl = dl;
    this.histogram = histogram;
    this.slowest = slowest;
    this.key = "";
  }

  resize() {
    const c = this.histogram, dpr = window.devicePixelRatio || 1;
    c.width = Math.round(c.clientWidth * dpr); c.height = Math.round(c.clientHeight * dpr);
    this.key = "";
  }

  draw(t, k) {
    const store = this.store;
    if (!store.meta || k < 0) return;
    const key = `${store.version}|${k}|${store.doneAt(t)}|${t}`;
    if (key === this.key) return;
    this.key = key;
    const { rows, m } = figures(store, t, k);
    const dl = this.dl;
    dl.textContent = "";
    for (const [name, value] of rows) {
      const div = document.createElement("div");
      div.title = METRIC_HELP[name] || "";
      div.dataset.metric = name;
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      if (name === "failed" && value !== "0") dd.className = "bad";
      div.append(dt, dd); dl.appendChild(div);
    }
    this.drawHistogram(m);
    this.drawSlowest(m);
  }

  // Latency of the requests answered so far; failed ones stacked on top in red.
  drawHistogram(m) {
    const store = this.store, c = this.histogram, ctx = c.getContext("2d"), dpr = window.devicePixelRatio || 1;
    const W = c.width / dpr, H = c.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const top = Math.max(store.maxLatency, 1);
    const bins = 24, ok = new Array(bins).fill(0), bad = new Array(bins).fill(0);
    const idx = recordsOf(store), lat = idx.lat, okPre = idx.okPre;
    for (let i = 0; i < m; i++) {
      const v = lat[i];
      if (Number.isNaN(v)) continue;
      const b = Math.min(bins - 1, Math.floor((v / top) * bins));
      (okPre[i + 1] > okPre[i] ? ok : bad)[b]++;
    }
    const most = Math.max(1, ...ok.map((v, i) => v + bad[i]));
    const css = getComputedStyle(document.documentElement);
    const ink = css.getPropertyValue("--ink-soft").trim() || "#3d4753";
    const left = 6, bottom = H - 18, bw = (W - left * 2) / bins, scale = (bottom - 16) / most;
    for (let i = 0; i < bins; i++) {
      const h1 = ok[i] * scale, h2 = bad[i] * scale;
      ctx.fillStyle = css.getPropertyValue("--s-io").trim();
      ctx.fillRect(left + i * bw + 1, bottom - h1, bw - 2, h1);
      ctx.fillStyle = css.getPropertyValue("--bad").trim();
      ctx.fillRect(left + i * bw + 1, bottom - h1 - h2, bw - 2, h2);
    }
    ctx.fillStyle = ink;
    ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "alphabetic";
    ctx.fillText("latency histogram (red: failed)", left, 11);
    ctx.fillText("0", left, H - 4);
    ctx.textAlign = "right";
    ctx.fillText(fmtDur(top), W - left, H - 4);
    ctx.fillText(`${most} max per bar`, W - left, 11);
    ctx.textAlign = "left";
  }

  // The slowest requests finished so far: a table to pick one for the inspector. Rebuilt
  // only when it changes, so a row under the pointer or with focus stays put.
  drawSlowest(m) {
    const store = this.store, idx = recordsOf(store);
    const top = idx.slowest(m, 6).map((i) => store.done[i]);
    const table = this.slowest;
    const sig = `${store.key}|${top.map((r) => r.id).join(",")}`;
    if (table.dataset.sig === sig) return;
    table.dataset.sig = sig;
    const tbody = table.tBodies[0];
    tbody.textContent = "";
    for (const r of top) {
      const tr = tbody.insertRow();
      tr.dataset.req = String(r.id);
      tr.tabIndex = 0;
      tr.insertCell().textContent = `user ${r.id + 1}`;
      tr.insertCell().textContent = r.path;
      tr.insertCell().textContent = fmtDur(r.finished - r.sent);
      // an answered request is "ok" to the server, but a 404 is not "ok" to the reader
      const answered = r.http && r.http >= 400 ? `${r.http}` : "ok";
      tr.insertCell().textContent = r.status === "ok" ? answered : `${r.status}${r.http ? ` (${r.http})` : ""}`;
    }
    table.hidden = top.length === 0;
  }
}
