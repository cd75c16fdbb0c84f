/**
 * A dependency-free SVG writer for the compare report: two panels, (1) the distribution (CDF) of last-node latency
 * per implementation and item size, (2) deliveries/s achieved against offered deliveries/s in the rate sweeps.
 * Pure: data in, SVG text out. Log scales, since the implementations differ by orders of magnitude.
 */

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  /** For the CDF panel: raw samples. For the sweep panel: [x, y] points. */
  values?: number[];
  points?: [number, number][];
}

const W = 520;
const H = 360;
const M = { left: 64, right: 16, top: 36, bottom: 48 };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

const fmt = (v: number) => (v >= 1000 ? `${v / 1000}k` : `${v}`);

/** One panel at (x0, 0): axes, grid, and whatever `body` draws with the scales it is given. */
function panel(
  x0: number,
  title: string,
  xLabel: string,
  yLabel: string,
  x: { lo: number; hi: number; log: boolean },
  y: { lo: number; hi: number; log: boolean },
  series: Series[],
  draw: (s: Series, sx: (v: number) => number, sy: (v: number) => number) => string,
): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const scale = (a: { lo: number; hi: number; log: boolean }, len: number, flip: boolean) => (v: number) => {
    const t = a.log ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo)) : (v - a.lo) / (a.hi - a.lo);
    const c = Math.max(0, Math.min(1, t));
    return flip ? M.top + ph * (1 - c) : x0 + M.left + pw * c;
  };
  const sx = scale(x, pw, false);
  const sy = scale(y, ph, true);
  const parts: string[] = [];
  parts.push(`<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  const xt = x.log ? logTicks(x.lo, x.hi) : [0, 0.25, 0.5, 0.75, 1].map((t) => x.lo + t * (x.hi - x.lo));
  const yt = y.log ? logTicks(y.lo, y.hi) : [0, 0.25, 0.5, 0.75, 1].map((t) => y.lo + t * (y.hi - y.lo));
  for (const v of xt) {
    parts.push(`<line x1="${sx(v)}" y1="${M.top}" x2="${sx(v)}" y2="${M.top + ph}" stroke="#ddd"/>`);
    parts.push(`<text x="${sx(v)}" y="${M.top + ph + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  for (const v of yt) {
    parts.push(`<line x1="${x0 + M.left}" y1="${sy(v)}" x2="${x0 + M.left + pw}" y2="${sy(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${x0 + M.left - 6}" y="${sy(v) + 4}" text-anchor="end">${y.log ? fmt(v) : `${Math.round(v * 100)}%`}</text>`);
  }
  parts.push(`<rect x="${x0 + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${x0 + M.left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(${x0 + 14} ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  for (const s of series) parts.push(draw(s, sx, sy));
  series.forEach((s, i) => {
    const ly = M.top + 12 + i * 16;
    const lx = x0 + M.left + 8;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`);
    parts.push(`<text x="${lx + 28}" y="${ly}">${esc(s.label)}</text>`);
  });
  return parts.join("\n");
}

const path = (pts: [number, number][], s: Series) =>
  `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ")}"/>`;

export function compareChart(title: string, latency: Series[], sweep: Series[]): string {
  const lat = latency.flatMap((s) => s.values ?? []).filter((v) => Number.isFinite(v) && v > 0);
  const pts = sweep.flatMap((s) => s.points ?? []).filter(([a, b]) => a > 0 && b > 0);
  const xl = { lo: Math.max(0.1, Math.min(...lat, 1)), hi: Math.max(...lat, 10) * 1.1, log: true };
  const left = panel(0, "Last-node latency at 10 msg/s (CDF)", "ms (log)", "items delivered everywhere", xl, { lo: 0, hi: 1, log: false }, latency, (s, sx, sy) => {
    const v = (s.values ?? []).filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
    return path(v.map((x, i) => [sx(x), sy((i + 1) / v.length)]), s);
  });
  const lo = Math.min(...pts.map(([a]) => a), ...pts.map(([, b]) => b));
  const hi = Math.max(...pts.map(([a]) => a), ...pts.map(([, b]) => b)) * 1.2;
  const axis = { lo: Math.max(1, lo * 0.8), hi, log: true };
  const ideal: Series = { label: "offered = delivered", color: "#999", dashed: true, points: [[axis.lo, axis.lo], [axis.hi, axis.hi]] };
  const right = panel(W, "Rate sweep: delivered vs offered", "offered deliveries/s (log)", "deliveries/s in window (log)", axis, axis, [...sweep, ideal], (s, sx, sy) =>
    path([...(s.points ?? [])].sort((a, b) => a[0] - b[0]).map(([a, b]) => [sx(a), sy(b)]), s),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 24}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    left,
    right,
    `<text x="${W}" y="${H + 16}" text-anchor="middle" fill="#555">${esc(title)}</text>`,
    `</svg>`,
  ].join("\n");
}
