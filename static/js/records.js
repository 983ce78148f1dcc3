// The finished-request records the page holds, in typed columns with prefix structures, so
// the figures at the playhead and the heat map's percentiles cost no sort per frame.
//
// Records come in the order the store received them (store.done: by the time each became
// known, i.e. finished, then id) and are only ever appended, so everything here grows with
// them: a partial run can be followed by the rest. ``sync()`` takes in whatever the store
// has that this index has not seen; a new run (or a store that was reset) starts it afresh.
//
// Exact order statistics: latencies go into fixed log-spaced buckets (64 per factor of ten;
// a value's bucket is found by comparison against the bucket edges, so every value of a
// bucket is <= every value of the next). Per-bucket counts are kept at every BLOCK records
// (prefix sums), so the counts of any range of records are two rows and two short scans;
// the k-th smallest is then looked up among the few records of one bucket (a quickselect
// over their exact values). The result is the value a sort would give, bit for bit.

import { grow } from "./store.js";

const BLOCK = 512;            // records per prefix row
const PER_DECADE = 64;        // buckets per factor of ten
const LO_DECADE = -4;         // the first bucket's lower edge, 10^-4 ms (below: bucket 0)
const DECADES = 12;           // up to 10^8 ms (above: the last bucket)
const NB = PER_DECADE * DECADES;
const TOP = 6;                // the slowest requests kept per prefix row

const EDGES = new Float64Array(NB);  // EDGES[j]: the lower edge of bucket j (j >= 1)
for (let j = 0; j < NB; j++) EDGES[j] = 10 ** (LO_DECADE + j / PER_DECADE);

function bucketOf(v) {  // the last j with EDGES[j] <= v (0 below the first edge, NaN -> 0)
  let lo = 1, hi = NB;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (EDGES[mid] <= v) lo = mid + 1; else hi = mid;
  }
  return lo - 1;
}


// The k-th smallest (0-based) of a[0..n), reordering a (Hoare's selection).
function select(a, n, k) {
  let lo = 0, hi = n - 1;
  while (hi > lo) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) { const x = a[i]; a[i] = a[j]; a[j] = x; i++; j--; }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

// The q-th percentile of n sorted values whose order statistics `at(i)` gives: the same
// interpolation as a sorted array's (see metrics.js).
export function interpolate(n, q, at) {
  if (!n) return null;
  const pos = (n - 1) * q / 100, lo = Math.floor(pos), hi = Math.min(lo + 1, n - 1);
  const a = at(lo), b = hi === lo ? a : at(hi);
  return a + (b - a) * (pos - lo);
}

export class Records {
  constructor(store) {
    this.store = store;
    this.clear();
  }

  clear() {
    this.done = null;        // the store's array this index was built from
    this.n = 0;
    this.sent = new Float64Array(0);
    this.accepted = new Float64Array(0);  // NaN when never accepted
    this.finished = new Float64Array(0);  // NaN when it never finished
    this.lat = new Float64Array(0);       // finished - sent, NaN when it never finished
    this.lg = new Float64Array(0);        // log10 of the latency (at least 0.01 ms)
    this.known = new Float64Array(0);     // when it became known: finished, or the run's end
    this.thread = new Int32Array(0);
    this.bucket = new Int16Array(0);      // -1 when it never finished
    this.okPre = new Int32Array(1);       // okPre[i]: ok records among the first i
    this.latPre = new Int32Array(1);      // ... records with a latency
    this.racePre = new Int32Array(1);     // ... records that read another request's global
    this.maxPre = new Float64Array(1);    // ... the largest latency (-Infinity: none)
    this.maxPre[0] = -Infinity;
    this.sorted = true;                   // known times never go back (the heat map's ranges)
    this.latMin = Infinity;               // over every latency, for the heat map's axis
    this.latMax = 0;
    this.cum = new Int32Array(NB);        // row b: bucket counts of the first b * BLOCK records
    this.members = [];                    // bucket j: its records' indices, in order
    this.memberN = new Int32Array(NB);
    this.topPre = [[]];                   // row b: the slowest TOP of the first b * BLOCK
    this.failures = [];                   // indices of records that did not end well
    this.races = [];                      // indices of records that read another's global
    this.reasons = [];                    // [why, indices] in order of first appearance
    this.reasonIndex = new Map();
    this.scratch = new Float64Array(1024);
    this.counts = new Int32Array(NB);
  }

  // Take in the records the store has that this index has not seen yet.
  sync() {
    const done = this.store.done;
    if (done !== this.done || done.length < this.n) {
      this.clear();
      this.done = done;
    }
    const n0 = this.n, n1 = done.length;
    if (n1 === n0) return this;
    for (const k of ["sent", "accepted", "finished", "lat", "lg", "known"]) this[k] = grow(this[k], n1);
    this.thread = grow(this.thread, n1);
    this.bucket = grow(this.bucket, n1);
    for (const k of ["okPre", "latPre", "racePre", "maxPre"]) this[k] = grow(this[k], n1 + 1);
    for (let i = n0; i < n1; i++) {
      const r = done[i];
      this.sent[i] = r.sent;
      this.accepted[i] = r.accepted === null ? NaN : r.accepted;
      this.finished[i] = r.finished === null ? NaN : r.finished;
      this.thread[i] = r.thread;
      this.known[i] = r.finished === null ? this.store.end : r.finished;
      if (i > 0 && !(this.known[i] >= this.known[i - 1])) this.sorted = false;
      let lat = NaN, b = -1;
      if (r.finished !== null) {
        lat = r.finished - r.sent;
        b = bucketOf(lat);
        let list = this.members[b];
        if (!list || list.length <= this.memberN[b]) list = this.members[b] = grow(list || new Int32Array(0), this.memberN[b] + 1);
        list[this.memberN[b]++] = i;
        const v = Math.max(lat, 0.01);
        this.lg[i] = Math.log10(v);
        this.latMin = Math.min(this.latMin, v);
        this.latMax = Math.max(this.latMax, v);
      }
      this.lat[i] = lat;
      this.bucket[i] = b;
      const ok = r.status === "ok";
      this.okPre[i + 1] = this.okPre[i] + (ok ? 1 : 0);
      this.latPre[i + 1] = this.latPre[i] + (b >= 0 ? 1 : 0);
      this.racePre[i + 1] = this.racePre[i] + (r.race ? 1 : 0);
      this.maxPre[i + 1] = b >= 0 ? Math.max(this.maxPre[i], lat) : this.maxPre[i];
      if (!ok) {
        this.failures.push(i);
        const why = r.http ? `HTTP ${r.http}` : r.status;
        let at = this.reasonIndex.get(why);
        if (at === undefined) { at = this.reasons.length; this.reasonIndex.set(why, at); this.reasons.push([why, []]); }
        this.reasons[at][1].push(i);
      }
      if (r.race) this.races.push(i);
      if ((i + 1) % BLOCK === 0) this.closeBlock((i + 1) / BLOCK);
    }
    this.n = n1;
    return this;
  }

  // Records [0, b * BLOCK) are in: their bucket counts and their slowest, as row b.
  closeBlock(b) {
    this.cum = grow(this.cum, (b + 1) * NB);
    const cum = this.cum, from = (b - 1) * BLOCK, to = b * BLOCK;
    cum.copyWithin(b * NB, (b - 1) * NB, b * NB);
    for (let i = from; i < to; i++) if (this.bucket[i] >= 0) cum[b * NB + this.bucket[i]]++;
    this.topPre[b] = this.slowestIn(this.topPre[b - 1], from, to);
  }

  // The first record known at or after t / after t (the records are in known order).
  firstKnownAtOrAfter(t) {
    let lo = 0, hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.known[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  firstKnownAfter(t) {
    let lo = 0, hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.known[mid] <= t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // --- prefix figures: the first m records --------------------------------------------------

  ok(m) { return this.okPre[m]; }
  latencies(m) { return this.latPre[m]; }
  raced(m) { return this.racePre[m]; }
  maxLatency(m) { return this.latPre[m] ? this.maxPre[m] : null; }

  // [why, count] of the failures among the first m records, in order of first appearance.
  failedBy(m) {
    const out = [];
    for (const [why, list] of this.reasons) {
      const c = upperBound(list, list.length, m - 1);
      if (c) out.push([why, c]);
    }
    return out;
  }

  // The q-th percentile of the latencies of the first m records (as a sort gives it).
  percentile(m, q) {
    return this.quantiles(0, m, [q])[0];
  }

  // The slowest `count` (<= TOP) of the first m records: indices, slowest first, ties in
  // order of arrival (a stable sort's order).
  slowest(m, count = TOP) {
    const b = Math.floor(m / BLOCK);
    return this.slowestIn(this.topPre[b], b * BLOCK, m).slice(0, count);
  }

  slowestIn(top, from, to) {
    const out = top.slice();
    const lat = this.lat;
    for (let i = from; i < to; i++) {
      const v = lat[i];
      if (Number.isNaN(v)) continue;
      if (out.length === TOP && !(v > lat[out[TOP - 1]])) continue;  // ties: the earlier stays
      let j = out.length;
      if (j < TOP) out.push(i); else j = TOP - 1;
      while (j > 0 && lat[out[j - 1]] < v) { out[j] = out[j - 1]; j--; }
      out[j] = i;
    }
    return out;
  }

  // --- ranges of records [l, r) ------------------------------------------------------------

  // Per-bucket latency counts of the first x records, added (sign 1) or taken (-1) into out.
  addCounts(out, x, sign) {
    const b = Math.floor(x / BLOCK), row = b * NB, cum = this.cum;
    if (b > 0) for (let j = 0; j < NB; j++) out[j] += sign * cum[row + j];
    for (let i = b * BLOCK; i < x; i++) if (this.bucket[i] >= 0) out[this.bucket[i]] += sign;
  }

  // The q-th percentiles (each of qs) of the latencies of records [l, r), as a sorted copy
  // would give them; `clamp` is applied to every latency first (a monotone map).
  quantiles(l, r, qs, clamp = null) {
    const counts = this.counts;
    counts.fill(0);
    this.addCounts(counts, r, 1);
    this.addCounts(counts, l, -1);
    let n = 0;
    for (let j = 0; j < NB; j++) n += counts[j];
    if (!n) return qs.map(() => null);
    // the ranks wanted (each percentile interpolates between two), then each rank's bucket:
    // a bucket's records in [l, r) are gathered once and every rank in it selected there
    const ranks = [];
    for (const q of qs) {
      const pos = (n - 1) * q / 100, lo = Math.floor(pos);
      ranks.push(lo, Math.min(lo + 1, n - 1));
    }
    const order = [...new Set(ranks)].sort((x, y) => x - y), value = new Map();
    let j = 0, below = 0, gathered = -1, len = 0;
    for (const k of order) {
      while (below + counts[j] <= k) below += counts[j++];
      if (gathered !== j) { len = this.gather(j, l, r, counts[j]); gathered = j; }
      const v = select(this.scratch, len, k - below);
      value.set(k, clamp ? clamp(v) : v);
    }
    return qs.map((q) => interpolate(n, q, (k) => value.get(k)));
  }

  // Bucket j's latencies of records in [l, r) (there are `count`) into the scratch array.
  gather(j, l, r, count) {
    const list = this.members[j], len = this.memberN[j];
    if (this.scratch.length < count) this.scratch = new Float64Array(count * 2);
    const a = this.scratch, lat = this.lat;
    let n = 0;
    for (let i = lowerBound(list, len, l); i < len && list[i] < r; i++) a[n++] = lat[list[i]];
    return n;
  }
}

// In a sorted Int32Array's first n: the first position whose value is >= v / > v.
function lowerBound(a, n, v) {
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < v) lo = mid + 1; else hi = mid;
  }
  return lo;
}
function upperBound(a, n, v) {
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// One index per store, shared by the views that read it.
const indexes = new WeakMap();
export function recordsOf(store) {
  let idx = indexes.get(store);
  if (!idx) { idx = new Records(store); indexes.set(store, idx); }
  return idx.sync();
}
