/**
 * The `--report DIR` output of `gossip simulate`: a Markdown summary of one or more results and SVG charts (the
 * latency CDF of every run; delivered ratio against failure fraction and amplification against N when the runs
 * vary those). Pure: results in, file contents out (the CLI writes them).
 */
import type { SimResult } from "./simulator.ts";

export interface ReportFiles {
  [name: string]: string;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function label(r: SimResult): string {
  return `N=${r.nodes} D=${r.degree} ${r.scenario}${r.uplink_mbit === null ? "" : ` ${r.uplink_mbit} Mbit/s`}`;
}

/** A table row of the figures the baseline tables show. */
export function tableRow(r: SimResult, command?: string): string {
  const cells = [
    String(r.nodes),
    String(r.degree),
    r.scenario,
    r.delivered_ratio.toFixed(4),
    `${r.items_fully_delivered}/${r.items}`,
    r.copies_per_delivery.toFixed(2),
    r.rmr.toFixed(2),
    r.amplification.toFixed(2),
    `${r.latency_ms.p50} / ${r.latency_ms.p99}`,
    `${r.last_delivery_ms.p50} / ${r.last_delivery_ms.p99} / ${r.last_delivery_ms.max}`,
    `${r.ldh.mean} / ${r.ldh.max}`,
    String(r.wall_seconds),
    String(r.peak_rss_mb),
  ];
  if (command !== undefined) cells.push(`\`${command}\``);
  return `| ${cells.join(" | ")} |`;
}

export const TABLE_HEADER =
  "| N | degree | scenario | delivered | items full | copies/delivery | RMR | amplification | latency p50 / p99 ms | last delivery p50 / p99 / max ms | LDH mean / max | wall s | RSS MB |";
export const TABLE_RULE = "|---|---|---|---|---|---|---|---|---|---|---|---|---|";

export function markdownReport(results: SimResult[], commands: string[] = []): string {
  const lines = ["# gossip simulate", ""];
  const withCommands = commands.length === results.length;
  lines.push(withCommands ? `${TABLE_HEADER} command |` : TABLE_HEADER, withCommands ? `${TABLE_RULE}---|` : TABLE_RULE);
  results.forEach((r, i) => lines.push(tableRow(r, withCommands ? commands[i] : undefined)));
  lines.push("", "Charts: `latency-cdf.svg`" + (failureSeries(results).length > 1 ? ", `delivered-vs-failure.svg`" : "") + (sizeSeries(results).length > 1 ? ", `amplification-vs-n.svg`" : "") + ".", "");
  for (const r of results) {
    lines.push(`## ${label(r)}`, "", "```json", JSON.stringify(r, null, 2), "```", "");
  }
  return lines.join("\n");
}

export function reportFiles(results: SimResult[], commands: string[] = []): ReportFiles {
  const files: ReportFiles = { "README.md": markdownReport(results, commands) };
  // Past ten runs the chart would be a tangle: then only the steady ones (if any).
  const steady = results.filter((r) => r.scenario === "steady");
  const cdfRuns = results.length > 10 && steady.length > 0 ? steady : results.slice(0, 10);
  files["latency-cdf.svg"] = lineChart(
    "Delivery latency (CDF over deliveries)",
    "ms after publication",
    "share of deliveries",
    cdfRuns.map((r) => ({ label: label(r), points: r.latency_cdf_ms.map((ms, i, all) => [ms, i / (all.length - 1)] as [number, number]) })),
    { logX: false, percentY: true },
  );
  const failures = failureSeries(results);
  if (failures.length > 1) {
    files["delivered-vs-failure.svg"] = lineChart("Delivered ratio vs failure fraction", "fraction crashed", "delivered to survivors", groupBy(failures, (r) => `N=${r.nodes} D=${r.degree}`, (r) => [failureFraction(r)!, r.delivered_ratio]), { logX: false, percentY: true });
  }
  const sizes = sizeSeries(results);
  if (sizes.length > 1) {
    files["amplification-vs-n.svg"] = lineChart("Amplification vs N", "nodes", "link bytes / (deliveries × item size)", groupBy(sizes, (r) => `D=${r.degree} ${r.scenario}`, (r) => [r.nodes, r.amplification]), { logX: true, percentY: false });
  }
  return files;
}

function failureFraction(r: SimResult): number | undefined {
  if (r.scenario === "steady") return 0;
  const m = /^failure:([\d.]+)/.exec(r.scenario);
  return m ? Number(m[1]) : undefined;
}

function failureSeries(results: SimResult[]): SimResult[] {
  return results.filter((r) => failureFraction(r) !== undefined);
}

/** Runs that differ in N (the steady ones, when there are any, to keep the chart readable). */
function sizeSeries(results: SimResult[]): SimResult[] {
  const steady = results.filter((r) => r.scenario === "steady");
  const runs = new Set(steady.map((r) => r.nodes)).size > 1 ? steady : results;
  return new Set(runs.map((r) => r.nodes)).size > 1 ? runs : [];
}

function groupBy(results: SimResult[], key: (r: SimResult) => string, point: (r: SimResult) => [number, number]): { label: string; points: [number, number][] }[] {
  const groups = new Map<string, [number, number][]>();
  for (const r of results) groups.set(key(r), [...(groups.get(key(r)) ?? []), point(r)]);
  return [...groups].map(([label, points]) => ({ label, points: points.sort((a, b) => a[0] - b[0]) }));
}

/** One panel: axes with five ticks each, a polyline per series, a legend. */
export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: { label: string; points: [number, number][] }[],
  opts: { logX: boolean; percentY: boolean },
): string {
  const W = 640;
  const H = 400;
  const M = { left: 70, right: 20, top: 40, bottom: 50 };
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]).filter((x) => !opts.logX || x > 0);
  const ys = all.map((p) => p[1]);
  let xlo = xs.length ? Math.min(...xs) : 0;
  let xhi = xs.length ? Math.max(...xs) : 1;
  let ylo = opts.percentY ? Math.min(0, ...ys) : 0;
  let yhi = opts.percentY ? 1 : ys.length ? Math.max(...ys) * 1.1 : 1;
  if (!opts.logX) xlo = Math.min(0, xlo);
  if (xhi <= xlo) xhi = xlo + 1;
  if (yhi <= ylo) yhi = ylo + 1;
  const tx = (x: number) => (opts.logX ? (Math.log10(x) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo) || 1) : (x - xlo) / (xhi - xlo));
  const sx = (x: number) => M.left + (W - M.left - M.right) * Math.max(0, Math.min(1, tx(x)));
  const sy = (y: number) => M.top + (H - M.top - M.bottom) * (1 - (y - ylo) / (yhi - ylo));
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`];
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="22" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const xv = opts.logX ? 10 ** (Math.log10(xlo) + ((Math.log10(xhi) - Math.log10(xlo)) * i) / 4) : xlo + ((xhi - xlo) * i) / 4;
    const yv = ylo + ((yhi - ylo) * i) / 4;
    out.push(`<line x1="${sx(xv)}" y1="${M.top}" x2="${sx(xv)}" y2="${H - M.bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${sx(xv)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(xv)}</text>`);
    out.push(`<line x1="${M.left}" y1="${sy(yv)}" x2="${W - M.right}" y2="${sy(yv)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${sy(yv) + 4}" text-anchor="end">${opts.percentY ? `${Math.round(yv * 1000) / 10}%` : fmt(yv)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.filter((p) => !opts.logX || p[0] > 0).map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`);
    if (pts.length > 0) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(" ")}"/>`);
    const ly = M.top + 14 + i * 16;
    out.push(`<line x1="${M.left + 10}" y1="${ly - 4}" x2="${M.left + 32}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${M.left + 38}" y="${ly}">${esc(s.label)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}

function fmt(v: number): string {
  if (Math.abs(v) >= 10_000) return `${Math.round(v / 1000)}k`;
  if (Math.abs(v) >= 100) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}
