// The timeline as a PNG for a slide: a title, a line saying what ran, the colours' legend,
// then every lane and request row at the current zoom. In the page's colours or, on
// request, the projector's (white ground, large type).

import { TimeScale } from "./scale.js";
import { Timeline } from "./timeline.js";
import { textScale } from "./projector.js";

const WIDTH = 1600;
const LEGEND = [["connecting", "connecting (SYN)"], ["backlog", "in the kernel backlog"], ["pool", "waiting for a thread"],
  ["gil", "waiting for the GIL"], ["cpu", "running on a core"], ["io", "blocked on I/O"], ["write", "writing the response"]];

// One line saying what ran: the server, the machine, the workload, the seed.
export function scenarioLine(sc, seed) {
  const s = sc.server || {}, m = sc.machine || {};
  let server;
  if (s.kind === "gunicorn") {
    const wc = s.worker_class || "sync";
    server = `gunicorn -w ${s.workers || 1} --worker-class ${wc}${s.threads > 1 ? ` --threads ${s.threads}` : ""}${s.backlog !== undefined && s.backlog !== 2048 ? ` --backlog ${s.backlog}` : ""}`;
  } else {
    server = `Flask dev server (threaded=${s.threaded ? "True" : "False"}${s.processes > 1 ? `, processes=${s.processes}` : ""})`;
  }
  const machine = `${m.cores || 2} cores, ${m.gil === false ? "no GIL" : `GIL (switch ${m.switch_interval_ms || 5} ms)`}`;
  const load = (sc.workload || []).map((w) => {
    if (w.poisson) return `Poisson ${w.poisson.rate_per_s}/s for ${w.poisson.duration_s} s`;
    const path = w.path || Object.keys(w.paths || {}).join(", ") || "?";
    return `${w.count || 1} × GET ${path} at ${w.at_ms || 0} ms${w.spacing_ms ? `, one every ${w.spacing_ms} ms` : ""}`;
  }).join(" + ");
  return `${server} · ${machine} · ${load}${seed !== null && seed !== undefined ? ` · seed ${seed}` : ""}`;
}

// A canvas holding the export. `projector` draws it in the projector's colours and type.
export function exportCanvas({ store, scale, title, scenario, seed, projector }) {
  const root = document.documentElement, was = root.classList.contains("projector");
  root.classList.toggle("projector", !!projector);
  try {
    const css = getComputedStyle(root);
    const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const k = textScale();
    const sc = new TimeScale();
    sc.end = scale.end; sc.t0 = scale.t0; sc.t1 = scale.t1;
    const tlCanvas = document.createElement("canvas");
    const n = store.meta.n_requests;
    const tl = new Timeline(tlCanvas, store, sc, { width: WIDTH, maxRequestsHeight: Math.min(900, Math.max(200, n * 22)) });
    tl.layout();
    tl.resize();
    tl.compose(store.complete ? store.end : store.lastT);
    const dpr = tl.dpr || 1;
    // the header: title, scenario line, legend
    const pad = 24, titlePx = Math.round(28 * k), linePx = Math.round(16 * k), legendPx = Math.round(15 * k);
    const out = document.createElement("canvas");
    const ctx = out.getContext("2d");
    ctx.font = `${legendPx}px system-ui, sans-serif`;
    const items = LEGEND.map(([state, text]) => ({ state, text, w: legendPx * 1.4 + ctx.measureText(text).width + legendPx }));
    const rows = [];
    let row = [], used = 0;
    for (const it of items) {
      if (used + it.w > WIDTH - 2 * pad && row.length) { rows.push(row); row = []; used = 0; }
      row.push(it); used += it.w;
    }
    rows.push(row);
    const headH = pad + titlePx * 1.3 + linePx * 1.6 + rows.length * legendPx * 1.7 + 10;
    out.width = Math.round(WIDTH * dpr);
    out.height = Math.round((headH + tl.height + pad) * dpr);
    ctx.scale(dpr, dpr);
    ctx.fillStyle = colour("--panel", "#ffffff");
    ctx.fillRect(0, 0, WIDTH, out.height / dpr);
    ctx.textBaseline = "top";
    let y = pad;
    ctx.fillStyle = colour("--ink", "#15202b");
    ctx.font = `700 ${titlePx}px system-ui, sans-serif`;
    ctx.fillText(title, pad, y);
    y += titlePx * 1.3;
    ctx.fillStyle = colour("--ink-soft", "#3d4753");
    ctx.font = `${linePx}px system-ui, sans-serif`;
    ctx.fillText(scenarioLine(scenario, seed), pad, y);
    y += linePx * 1.6;
    ctx.font = `${legendPx}px system-ui, sans-serif`;
    for (const r of rows) {
      let x = pad;
      for (const it of r) {
        ctx.fillStyle = colour(`--s-${it.state}`, "#999");
        ctx.fillRect(x, y + legendPx * 0.1, legendPx * 1.1, legendPx * 0.9);
        ctx.fillStyle = colour("--ink", "#15202b");
        ctx.fillText(it.text, x + legendPx * 1.4, y);
        x += it.w;
      }
      y += legendPx * 1.7;
    }
    y += 10;
    ctx.drawImage(tlCanvas, 0, y, WIDTH, tl.height);
    return out;
  } finally {
    root.classList.toggle("projector", was);
  }
}

export function downloadPng(canvas, filename) {
  canvas.toBlob((blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
}
