// Time <-> pixels for the timelines, plus tick and time formatting.

export class TimeScale {
  constructor() {
    this.end = 1000;     // the run's length in ms
    this.t0 = 0;         // visible window, ms
    this.t1 = 1000;
    this.left = 0;       // plot area in CSS pixels
    this.width = 100;
    this.version = 0;    // bumped on every change, so views know to redraw
  }

  setPixels(left, width) {
    if (left !== this.left || width !== this.width) {
      this.left = left;
      this.width = Math.max(width, 10);
      this.version++;
    }
  }

  fit(end) {
    if (end !== undefined) this.end = Math.max(end, 0.01);
    this.t0 = 0;
    this.t1 = this.end;
    this.version++;
  }

  x(t) { return this.left + ((t - this.t0) / (this.t1 - this.t0)) * this.width; }
  t(x) { return this.t0 + ((x - this.left) / this.width) * (this.t1 - this.t0); }
  get msPerPx() { return (this.t1 - this.t0) / this.width; }

  zoom(factor, around) {
    const minSpan = Math.min(0.05, this.end), maxSpan = this.end;
    const span = Math.min(maxSpan, Math.max(minSpan, (this.t1 - this.t0) * factor));
    const frac = (around - this.t0) / (this.t1 - this.t0);
    this.t0 = around - frac * span;
    this.t1 = this.t0 + span;
    this.clamp();
  }

  pan(dt) {
    this.t0 += dt;
    this.t1 += dt;
    this.clamp();
  }

  clamp() {
    const span = this.t1 - this.t0;
    if (this.t0 < 0) { this.t0 = 0; this.t1 = span; }
    if (this.t1 > this.end) { this.t1 = this.end; this.t0 = Math.max(0, this.end - span); }
    this.version++;
  }
}

// "Nice" 1-2-5 tick marks for a window, about `count` of them.
export function ticks(t0, t1, count) {
  const raw = (t1 - t0) / Math.max(count, 1);
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + step * 1e-9; t += step) out.push(t);
  return { step, marks: out };
}

export function fmtTick(ms, step) {
  if (step >= 1000) return `${(ms / 1000).toFixed(step % 1000 ? 1 : 0)} s`;
  if (step >= 1) return ms >= 1000 ? `${(ms / 1000).toFixed(Math.max(0, 3 - Math.floor(Math.log10(step))))} s` : `${Math.round(ms)} ms`;
  return `${ms.toFixed(Math.min(3, Math.ceil(-Math.log10(step))))} ms`;
}

export function fmtClock(ms) {
  return `T = ${(ms / 1000).toFixed(3)} s`;
}

export function fmtDur(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "–";
  if (Math.abs(ms) >= 1000) return `${(ms / 1000).toFixed(3)} s`;
  if (Math.abs(ms) >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}
