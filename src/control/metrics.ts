/**
 * The node's metrics as Prometheus families: a pure mapping from a ControlSource snapshot to MetricFamily[].
 * Every name here is documented in README "Metrics reference"; keep the two in step. Counters only ever grow within
 * one process (per-link figures add the totals of closed links); gauges are the state right now.
 */
import type { ControlSource } from "./source.ts";
import { counter, gauge, labelled, type MetricFamily } from "./prometheus.ts";

/** Bytes and drops over every link this node ever had: the closed links' totals plus the open links' counters. */
export function linkTotals(transport: ControlSource["transport"]): { bytesIn: number; bytesOut: number; dropped: number } {
  const closed = transport.stats().closedLinks;
  const totals = { bytesIn: closed.bytesIn, bytesOut: closed.bytesOut, dropped: closed.droppedMessages };
  for (const l of transport.linked()) {
    totals.bytesIn += l.bytesIn;
    totals.bytesOut += l.bytesOut;
    totals.dropped += l.droppedMessages;
  }
  return totals;
}

export function nodeMetrics(s: ControlSource): MetricFamily[] {
  const t = s.transport.stats();
  const api = s.api.stats();
  const b = s.broadcaster.stats();
  const m = s.membership.stats();
  const links = s.transport.linked();
  const { bytesIn, bytesOut, dropped } = linkTotals(s.transport);
  const inbound = links.filter((l) => l.info.inbound).length;
  const tree = b.tree;
  const views = m as Partial<Record<"shuffles" | "promotions" | "neighborRefused" | "joins", number>>;

  return [
    gauge("gossip_build_info", "Always 1; the labels name the running build.", 1, { version: s.version, commit: s.commit }),
    gauge("gossip_start_time_seconds", "Unix time the node started.", s.startedAt / 1000),

    // P2P links and handshakes
    labelled("gossip_links", "Authenticated peer links now, by who dialed.", "gauge", "direction",
      new Map([["inbound", inbound], ["outbound", links.length - inbound]])),
    gauge("gossip_handshakes_pending", "Handshakes in progress now (inbound and outbound).", t.pendingHandshakes),
    counter("gossip_handshakes_completed_total", "Handshakes that authenticated a peer (before link admission).", t.handshakesOk),
    labelled("gossip_handshakes_failed_total", "Connections that did not become a link, by reason.", "counter", "reason",
      t.handshakesFailed),
    counter("gossip_link_bytes_received_total", "Framed bytes received on peer links (ciphertext and length prefixes).", bytesIn),
    counter("gossip_link_bytes_sent_total", "Framed bytes queued for sending on peer links.", bytesOut),
    counter("gossip_link_send_dropped_total", "Items dropped for one peer because its send buffer was full.", dropped),

    // Dissemination
    counter("gossip_items_announced_total", "Items announced by local modules.", b.announced),
    counter("gossip_items_received_total", "Item copies received from peers, duplicates included.", b.received),
    counter("gossip_items_duplicate_total", "Item copies dropped because their ID was already seen.", b.duplicates),
    counter("gossip_items_id_mismatch_total", "Item copies whose ID did not match their content.", b.idMismatch),
    counter("gossip_items_not_subscribed_total", "Items of a data type no local module subscribed to.", b.notSubscribed),
    counter("gossip_items_dropped_busy_total", "Items dropped because too many validations were outstanding.", b.droppedBusy),
    counter("gossip_items_valid_total", "Items from peers that every local subscriber declared valid.", b.valid),
    counter("gossip_items_invalid_total", "Items from peers a local subscriber declared invalid.", b.invalid),
    counter("gossip_items_unanswered_total", "Items from peers no subscriber answered in time.", b.unanswered),
    counter("gossip_items_forwarded_total", "Item copies handed to peer links (announcements, forwards, cache replays).", b.forwarded),
    counter("gossip_items_send_failed_total", "Item copies a peer link refused (peer gone or send buffer full).", b.sendFailed),
    counter("gossip_items_cache_replayed_total", "Cached items sent to newly linked peers.", b.cacheReplayed),
    counter("gossip_peers_banned_total", "Peers banned for sending invalid items.", b.bans),
    ...(s.score
      ? [
          counter("gossip_peers_score_banned_total", "Peers banned because their score fell below the ban threshold.", s.score.stats().scoreBans),
          gauge("gossip_peers_banned", "Peers banned now (by strikes or by score).", s.score.stats().banned),
        ]
      : []),
    gauge("gossip_item_cache_items", "Validated items in the cache for newly linked peers.", b.cached),
    gauge("gossip_item_cache_capacity", "Configured cache_size.", s.cacheCapacity),
    gauge("gossip_seen_ids", "Item IDs in the seen cache.", b.seen),
    s.observations.validation.family(
      "gossip_validation_duration_seconds",
      "Time from NOTIFICATION to verdict for items from peers (timeouts count at the timeout).",
    ),

    // Local modules
    gauge("gossip_api_connections", "Open VoidPhone API connections.", api.connections),
    gauge("gossip_api_subscriptions", "Subscriptions (connection, data type) now.", api.subscriptions),
    gauge("gossip_validations_outstanding", "NOTIFICATIONs awaiting a VALIDATION now.", api.outstanding),

    // Membership and proof of work
    gauge("gossip_peer_candidates", "Known peer addresses membership may dial.", m.candidates),
    counter("gossip_dials_total", "Dials membership started.", m.dials),
    counter("gossip_dial_failures_total", "Dials that did not give a link.", m.dialFailures),
    counter("gossip_rps_queries_total", "RPS QUERYs sent to the RPS module.", m.rpsQueries),
    counter("gossip_rps_failures_total", "RPS QUERYs that gave no usable peer.", m.rpsFailures),
    counter("gossip_link_rotations_total", "Link-rotation dials started (a node at degree swapping one link for a new address).", m.rotations),
    s.observations.powSolve.family("gossip_pow_solve_duration_seconds", "Time to solve the proof of work when dialing a peer."),

    // Broadcast trees (zero when flooding) and membership views (zero with the classic overlay)
    labelled("gossip_tree_links", "Links by broadcast-tree role now (lazy: lazy for at least one data type).", "gauge", "role",
      new Map([["eager", tree?.eager ?? links.length], ["lazy", tree?.lazy ?? 0]])),
    labelled("gossip_tree_messages_sent_total", "Broadcast-tree messages sent, by kind.", "counter", "kind",
      new Map([["ihave", tree?.ihaveSent ?? 0], ["graft", tree?.graftsSent ?? 0], ["prune", tree?.prunesSent ?? 0]])),
    labelled("gossip_tree_messages_received_total", "Broadcast-tree messages received, by kind.", "counter", "kind",
      new Map([["ihave", tree?.ihaveReceived ?? 0], ["graft", tree?.graftsReceived ?? 0], ["prune", tree?.prunesReceived ?? 0]])),
    counter("gossip_tree_ids_announced_total", "Item IDs announced (several per IHAVE message): to lazy links, and in digests to a random tree neighbour.", tree?.idsAnnounced ?? 0),
    counter("gossip_tree_grafts_answered_total", "GRAFTed items we sent in full.", tree?.graftsAnswered ?? 0),
    counter("gossip_tree_grafts_missed_total", "GRAFTed items we no longer held (answered DONT-HAVE).", tree?.graftsMissed ?? 0),
    labelled("gossip_tree_broken_promises_total", "Peers charged by the trees: a run of GRAFTs they left unanswered, GRAFTs far beyond what we announced to them.", "counter", "kind",
      new Map([["unserved", tree?.unservedVerdicts ?? 0], ["graft_flood", tree?.graftFloods ?? 0], ["advert_flood", tree?.advertFloods ?? 0]])),
    counter("gossip_tree_optimisations_total", "Eager/lazy swaps because an announcement came by a much shorter path.", tree?.optimisations ?? 0),
    labelled("gossip_tree_root_adverts_total", "Rooted-tree adverts (TreeRoot: root, distance, parent) exchanged with neighbours.", "counter", "direction",
      new Map([["sent", tree?.rootAdvertsSent ?? 0], ["received", tree?.rootAdvertsReceived ?? 0]])),
    counter("gossip_tree_parent_changes_total", "Times this node's parent in a rooted tree changed (all types).", tree?.parentChanges ?? 0),
    counter("gossip_view_joins_total", "JOINs received (newcomers spread by FORWARD_JOIN walks).", views.joins ?? 0),
    counter("gossip_view_shuffles_total", "SHUFFLE walks started.", views.shuffles ?? 0),
    counter("gossip_view_promotions_total", "Passive-view entries dialed to fill the active view.", views.promotions ?? 0),
    counter("gossip_view_neighbor_refused_total", "Low-priority NEIGHBOR requests refused because the active view was full.", views.neighborRefused ?? 0),
  ];
}
