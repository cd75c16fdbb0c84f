/**
 * The shape of the overlay at one moment: links per node, inbound links per node (in-degree), and connected
 * components, over the live nodes' links as the simulated transport holds them. Pure: reads, never changes.
 */
import type { SimNode } from "./node.ts";

export interface OverlayStats {
  nodes: number;
  links_mean: number;
  links_min: number;
  links_max: number;
  inbound_mean: number;
  inbound_max: number;
  /** Connected components of the link graph among live nodes (1 = everyone can reach everyone). */
  components: number;
}

export function overlayStats(nodes: readonly SimNode[]): OverlayStats {
  let sum = 0;
  let min = Infinity;
  let max = 0;
  let inSum = 0;
  let inMax = 0;
  for (const n of nodes) {
    const links = n.links.size;
    sum += links;
    min = Math.min(min, links);
    max = Math.max(max, links);
    let inbound = 0;
    for (const c of n.links.values()) if (c.responder === n) inbound++;
    inSum += inbound;
    inMax = Math.max(inMax, inbound);
  }
  const count = nodes.length;
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return {
    nodes: count,
    links_mean: count === 0 ? 0 : r(sum / count),
    links_min: count === 0 ? 0 : min,
    links_max: max,
    inbound_mean: count === 0 ? 0 : r(inSum / count),
    inbound_max: inMax,
    components: components(nodes),
  };
}

function components(nodes: readonly SimNode[]): number {
  const seen = new Set<SimNode>();
  let count = 0;
  const stack: SimNode[] = [];
  for (const start of nodes) {
    if (seen.has(start)) continue;
    count++;
    seen.add(start);
    stack.push(start);
    while (stack.length > 0) {
      const n = stack.pop()!;
      for (const c of n.links.values()) {
        const other = c.initiator === n ? c.responder : c.initiator;
        // A link counts once both ends hold it (the other end may not have established it yet).
        if (!seen.has(other) && other.alive && other.links.get(n.id) === c) {
          seen.add(other);
          stack.push(other);
        }
      }
    }
  }
  return count;
}
