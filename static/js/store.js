// Every frame the server has sent, in typed arrays, so scrubbing back never asks again.

export function grow(arr, size) {
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
    this.gilSum = new Float64Array(0);     // running count of thread-ticks waiting for the GIL
    this.workSum = new Float64Array(0);    // running count of thread-ticks on a request (GIL, CPU, I/O)
    // The kernel backlog, exactly, from the requests' backlog spans (the frames sample it
    // once a tick and miss a queue that fills and empties between two ticks): the times
    // its depth changes, the depth and the running peak after each change.
    this.bl = { t: [], depth: [], peak: [], ends: [], d: 0, p: 0 };
    if (meta) {
      const ts = meta.thread_states;
      this.codeGil = ts.indexOf("gil");
      this.codeWork = new Set(["gil", "cpu", "io"].map((x) => ts.indexOf(x)));
      this.codeBacklog = meta.request_states.indexOf("backlog");
    }
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
      for (const k of ["t", "backlog", "busy", "inflight", "completed", "failed", "connecting", "maxBacklog", "busySum", "gilSum", "workSum"]) {
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
        let gil = 0, work = 0;
        for (let h = 0; h < nth; h++) {
          const code = c.th[(j * nth + h) * 2];
          this.th[i * nth + h] = code;
          this.thReq[i * nth + h] = c.th[(j * nth + h) * 2 + 1];
          if (code === this.codeGil) gil++;
          if (this.codeWork.has(code)) work++;
        }
        this.gilSum[i] = gil + (i ? this.gilSum[i - 1] : 0);
        this.workSum[i] = work + (i ? this.workSum[i - 1] : 0);
        for (let p = 0; p < np; p++) this.gil[i * np + p] = c.g[j * np + p];
      }
    }
    if (skip === 0) {  // spans, records and lines are only new when the frames are
      const from = this.reqSpans.n;
      this.reqSpans.push(c.rs);
      const sp = this.reqSpans;
      for (let j = from; j < sp.n; j++) if (sp.s[j] === this.codeBacklog) this.queueSpan(sp.a[j], sp.b[j]);
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
        if (rec.finished !== null) {
          this.maxLatency = Math.max(this.maxLatency, rec.finished - rec.sent);
        }
      }
      for (const line of c.n) this.lines.push(line);
    }
    if (c.last) { this.complete = true; this.queueFlush(); }
    this.version++;
    return true;
  }

  // One connection in the kernel backlog from a to b. Spans arrive in order of start, so
  // every change before a is final once the ends before it are applied.
  queueSpan(a, b) {
    const q = this.bl;
    while (q.ends.length && heapTop(q.ends) <= a) this.queueStep(heapPop(q.ends), -1);
    this.queueStep(a, 1);
    heapPush(q.ends, b);
  }

  queueStep(t, delta) {
    const q = this.bl;
    q.d += delta;
    q.p = Math.max(q.p, q.d);
    const n = q.t.length;
    if (n && q.t[n - 1] === t) { q.depth[n - 1] = q.d; q.peak[n - 1] = q.p; return; }
    q.t.push(t); q.depth.push(q.d); q.peak.push(q.p);
  }

  queueFlush() {
    const q = this.bl;
    while (q.ends.length) this.queueStep(heapPop(q.ends), -1);
  }

  // The backlog's depth at t and its peak from the start to t, from the spans.
  backlogAt(t) {
    const q = this.bl;
    let lo = 0, hi = q.t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (q.t[mid] <= t + 1e-9) lo = mid + 1; else hi = mid;
    }
    const i = lo - 1;
    let depth = i >= 0 ? q.depth[i] : 0;
    if (i === q.t.length - 1) for (const e of q.ends) if (e <= t + 1e-9) depth--;  // ends still pending
    return { depth, peak: i >= 0 ? q.peak[i] : 0 };
  }

  // Of the time threads spent on requests up to frame k, the share spent waiting for the GIL.
  gilShare(k) {
    if (k < 0 || !this.workSum[k]) return null;
    return this.gilSum[k] / this.workSum[k];
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

// A binary min-heap of numbers in a plain array.
function heapTop(h) { return h[0]; }
function heapPush(h, v) {
  h.push(v);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p] <= v) break;
    h[i] = h[p]; i = p;
  }
  h[i] = v;
}
function heapPop(h) {
  const top = h[0], last = h.pop();
  if (h.length) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i, mv = last;
      if (l < h.length && h[l] < mv) { m = l; mv = h[l]; }
      if (r < h.length && h[r] < mv) { m = r; mv = h[r]; }
      if (m === i) break;
      h[i] = h[m]; i = m;
    }
    h[i] = last;
  }
  return top;
}
