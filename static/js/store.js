// Every frame the server has sent, in typed arrays, so scrubbing back never asks again.

function grow(arr, size) {
  if (arr.length >= size) return arr;
  let cap = Math.max(arr.length * 2, 1024);
  while (cap < size) cap *= 2;
  const next = new arr.constructor(cap);
  next.set(arr);
  return next;
}

class Spans {
  // A growable column store of flat request spans: [req, start, end, state] each.
  constructor(width) {
    this.width = width;
    this.n = 0;
    this.a = new Float64Array(0);  // start ms
    this.b = new Float64Array(0);  // end ms
    this.s = new Uint8Array(0);    // state code
    this.k = new Int32Array(0);    // request id (request spans) or thread index (thread spans)
    this.r = new Int32Array(0);    // request id on the thread (thread spans)
  }

  push(flat) {
    const w = this.width, count = flat.length / w;
    const need = this.n + count;
    this.a = grow(this.a, need); this.b = grow(this.b, need); this.s = grow(this.s, need);
    this.k = grow(this.k, need); this.r = grow(this.r, need);
    for (let j = 0; j < count; j++) {
      const o = j * w, i = this.n + j;
      this.k[i] = flat[o];
      this.a[i] = flat[o + 1];
      this.b[i] = flat[o + 2];
      this.s[i] = flat[o + 3];
      this.r[i] = w > 4 ? flat[o + 4] : flat[o];
    }
    this.n = need;
  }
}

export class Store {
  constructor() { this.reset(null); }

  reset(meta) {
    this.meta = meta;
    this.key = meta ? meta.key : "";
    this.nth = meta ? meta.threads.length : 0;
    this.np = meta ? meta.processes.length : 0;
    this.n = 0;
    this.complete = false;
    this.version = (this.version || 0) + 1;
    this.t = new Float64Array(0);
    this.backlog = new Int32Array(0);
    this.busy = new Float32Array(0);
    this.inflight = new Int32Array(0);
    this.completed = new Int32Array(0);
    this.failed = new Int32Array(0);
    this.connecting = new Int32Array(0);
    this.maxBacklog = new Int32Array(0);   // running maximum, for the metrics
    this.busySum = new Float64Array(0);    // running sum, for CPU utilisation
    this.th = new Uint8Array(0);           // frame-major: thread states
    this.thReq = new Int32Array(0);        // frame-major: request on each thread
    this.gil = new Int16Array(0);          // frame-major: GIL holder thread per process
    this.reqSpans = new Spans(4);
    this.done = [];                        // records in the order they finished
    this.doneT = [];                       // the time each became known
    this.byId = new Map();
    this.lines = [];                       // [t, text]
    this.maxLatency = 0;
  }

  get tick() { return this.meta ? this.meta.tick_ms : 1; }
  get end() { return this.meta ? this.meta.end_ms : 0; }
  // The latest time the page can show without asking the server.
  get lastT() {
    if (!this.meta) return 0;
    if (this.complete) return this.end;
    return this.n ? this.t[this.n - 1] : 0;
  }

  ingest(c) {
    if (!this.meta) return false;
    if (c.i > this.n) return false;  // a gap: cannot happen on one socket, ignore defensively
    const skip = this.n - c.i;       // after a resume the first frames may overlap
    const count = c.t.length;
    const nth = this.nth, np = this.np;
    if (count > skip) {
      const need = this.n + count - skip;
      for (const k of ["t", "backlog", "busy", "inflight", "completed", "failed", "connecting", "maxBacklog", "busySum"]) {
        this[k] = grow(this[k], need);
      }
      this.th = grow(this.th, need * nth);
      this.thReq = grow(this.thReq, need * nth);
      this.gil = grow(this.gil, need * np);
      for (let j = skip; j < count; j++) {
        const i = this.n++;
        this.t[i] = c.t[j];
        this.backlog[i] = c.b[j];
        this.busy[i] = c.c[j];
        this.inflight[i] = c.q[j];
        this.completed[i] = c.d[j];
        this.failed[i] = c.x[j];
        this.connecting[i] = c.k[j];
        this.maxBacklog[i] = Math.max(c.b[j], i ? this.maxBacklog[i - 1] : 0);
        this.busySum[i] = c.c[j] + (i ? this.busySum[i - 1] : 0);
        for (let h = 0; h < nth; h++) {
          this.th[i * nth + h] = c.th[(j * nth + h) * 2];
          this.thReq[i * nth + h] = c.th[(j * nth + h) * 2 + 1];
        }
        for (let p = 0; p < np; p++) this.gil[i * np + p] = c.g[j * np + p];
      }
    }
    if (skip === 0) {  // spans, records and lines are only new when the frames are
      this.reqSpans.push(c.rs);
      for (const r of c.done) {
        if (this.byId.has(r[0])) continue;
        const rec = {
          id: r[0], path: this.meta.paths[r[1]], sent: r[2], accepted: r[3], finished: r[4],
          status: this.meta.statuses[r[5]], cpu: r[6], gilWait: r[7], thread: r[8],
          http: r[9], retries: r[10], race: r[11] === 1,
        };
        this.byId.set(rec.id, rec);
        this.done.push(rec);
        this.doneT.push(rec.finished === null ? this.end : rec.finished);
        if (rec.status === "ok" && rec.finished !== null) {
          this.maxLatency = Math.max(this.maxLatency, rec.finished - rec.sent);
        }
      }
      for (const line of c.n) this.lines.push(line);
    }
    if (c.last) this.complete = true;
    this.version++;
    return true;
  }

  // The frame to show at time t: the last one at or before t.
  frameAt(t) {
    if (!this.n) return -1;
    if (this.complete && t >= this.end - 1e-9) return this.n - 1;  // the final state
    let lo = 0, hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.t[mid] <= t + 1e-9) lo = mid + 1; else hi = mid;
    }
    return Math.max(0, lo - 1);
  }

  // Index of the last narration line at or before t (-1 if none).
  lineAt(t) {
    let lo = 0, hi = this.lines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.lines[mid][0] <= t + 1e-9) lo = mid + 1; else hi = mid;
    }
    return lo - 1;
  }

  // How many records are known (finished) at time t.
  doneAt(t) {
    let lo = 0, hi = this.doneT.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.doneT[mid] <= t + 1e-9) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // The state of request `req` at time t, from its spans (null when none).
  requestStateAt(req, t) {
    const s = this.reqSpans;
    for (let i = 0; i < s.n; i++) {
      if (s.k[i] === req && s.a[i] <= t && t < s.b[i]) return this.meta.request_states[s.s[i]];
    }
    return null;
  }
}
