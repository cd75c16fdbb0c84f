/**
 * Prometheus text exposition format 0.0.4, written directly: metric families in, text out, plus a fixed-bucket
 * histogram. Pure (no I/O, no clock). Must never emit a name or label that the format forbids: bad names are our bug
 * and throw; label values and help text are escaped, so a peer-chosen reason string cannot break the output.
 */

export type MetricType = "counter" | "gauge" | "histogram";
export type Labels = Record<string, string>;

export interface Sample {
  /** Appended to the family name: "" for counters and gauges, "_bucket" / "_sum" / "_count" for histograms. */
  suffix?: string;
  labels?: Labels;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function counter(name: string, help: string, value: number, labels?: Labels): MetricFamily {
  return { name, help, type: "counter", samples: [{ labels, value }] };
}

export function gauge(name: string, help: string, value: number, labels?: Labels): MetricFamily {
  return { name, help, type: "gauge", samples: [{ labels, value }] };
}

/** One family whose series differ by one label, e.g. failures by reason. Keys sorted for a stable output. */
export function labelled(name: string, help: string, type: "counter" | "gauge", label: string, values: Map<string, number>): MetricFamily {
  const keys = [...values.keys()].sort();
  return { name, help, type, samples: keys.map((k) => ({ labels: { [label]: k }, value: values.get(k)! })) };
}

/** Renders families in the order given; every family gets its HELP and TYPE line, even without samples. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  let out = "";
  for (const f of families) {
    if (!NAME.test(f.name)) throw new RangeError(`metric name ${JSON.stringify(f.name)} is not valid`);
    if (f.type === "counter" && !f.name.endsWith("_total")) throw new RangeError(`counter ${f.name} must end in _total`);
    if (seen.has(f.name)) throw new RangeError(`metric ${f.name} rendered twice`);
    seen.add(f.name);
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${f.name}${s.suffix ?? ""}${renderLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

function renderLabels(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_NAME.test(k) || k.startsWith("__")) throw new RangeError(`label name ${JSON.stringify(k)} is not valid`);
    parts.push(`${k}="${escapeLabelValue(v)}"`);
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A cumulative histogram over fixed upper bounds (seconds, by convention of the names using it). */
export class Histogram {
  private readonly bounds: number[];
  /** counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last slot is above every bound (+Inf). */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]!) || (i > 0 && bounds[i]! <= bounds[i - 1]!)) {
        throw new RangeError("Histogram: bounds must be finite and strictly increasing");
      }
    }
    this.bounds = [...bounds];
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return; // a broken clock reading must not poison the sum
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  get observations(): number {
    return this.count;
  }

  /** The same figures as the exposition, for JSON readers: cumulative counts per upper bound (the last is +Inf). */
  snapshot(): { count: number; sum: number; buckets: { le: number | "+Inf"; count: number }[] } {
    let cumulative = 0;
    const buckets: { le: number | "+Inf"; count: number }[] = this.bounds.map((le, i) => ({ le, count: (cumulative += this.counts[i]!) }));
    buckets.push({ le: "+Inf", count: this.count });
    return { count: this.count, sum: this.sum, buckets };
  }

  family(name: string, help: string): MetricFamily {
    const samples: Sample[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      samples.push({ suffix: "_bucket", labels: { le: formatValue(this.bounds[i]!) }, value: cumulative });
    }
    samples.push({ suffix: "_bucket", labels: { le: "+Inf" }, value: this.count });
    samples.push({ suffix: "_sum", value: this.sum });
    samples.push({ suffix: "_count", value: this.count });
    return { name, help, type: "histogram", samples };
  }
}
