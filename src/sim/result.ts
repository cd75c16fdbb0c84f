/**
 * The result document of one simulation (what `--json` writes), and the part of it computed from the measurements:
 * delivery figures over all items and per phase, amplification, messages and bytes per kind. Pure.
 */
import { round, type Counters, type DeliveryFigures, type ItemTrack, type Population, type SimMetrics } from "./metrics.ts";
import type { OverlayStats } from "./overlay.ts";
import type { NewcomerFigures } from "./scenario.ts";
import type { ViewFigures } from "./views.ts";
import type { Dissemination } from "./simulator.ts";

export interface SimResult extends DeliveryFigures {
  nodes: number;
  degree: number;
  dissemination: Dissemination;
  /** The membership the honest nodes ran (`--overlay`). */
  membership: "classic" | "hyparview";
  scenario: string;
  seed: number;
  items: number;
  size: number;
  rate: number;
  latency: string;
  uplink_mbit: number | null;
  adversaries: number;
  amplification: number;
  messages: Counters["messages"];
  bytes: Counters["bytes"];
  honest_peers_banned: number;
  adversaries_banned: number;
  /** Before the first item: joins, warm-up and (failure, churn, partition) what the scenario did first. */
  warmup: { sim_seconds: number; messages: Counters["messages"]; bytes: Counters["bytes"] };
  overlay: OverlayStats;
  /** The overlay at the end of the run (after the scenario, the drain and any --views-wait). */
  overlay_end: OverlayStats;
  /** How full the active views were from t0 on, and how long until they were full again. */
  views: ViewFigures;
  /** newcomer:K only. */
  newcomers?: NewcomerFigures;
  phases: Record<string, DeliveryFigures>;
  sim_seconds: number;
  wall_seconds: number;
  /** Wall seconds of: joins and warm-up; the scenario until the last item; the drain after it. */
  wall_phases: { warmup: number; scenario: number; drain: number };
  peak_rss_mb: number;
  events: number;
}

/** The figures SimResult takes from the measurements. */
export function deliveryResult(metrics: SimMetrics, population: Population, size: number) {
  const figures = metrics.figures(population);
  const totalBytes = Object.values(metrics.measured.bytes).reduce((a, b) => a + b, 0);
  const deliveries = metrics.items.reduce((a, t) => a + t.deliveries, 0);
  const phases: Record<string, DeliveryFigures> = {};
  const byPhase = new Map<string, ItemTrack[]>();
  for (const t of metrics.items) byPhase.set(t.phase, [...(byPhase.get(t.phase) ?? []), t]);
  if (byPhase.size > 1) for (const [name, list] of byPhase) phases[name] = metrics.figures(population, list);
  return {
    ...figures,
    amplification: deliveries === 0 ? 0 : round(totalBytes / (deliveries * size), 3),
    copies_per_delivery: round(figures.copies_per_delivery, 3),
    rmr: round(figures.rmr, 3),
    delivered_ratio: round(figures.delivered_ratio, 6),
    messages: metrics.measured.messages,
    bytes: metrics.measured.bytes,
    phases,
  };
}
