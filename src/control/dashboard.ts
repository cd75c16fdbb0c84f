/**
 * The dashboard the control server serves at `GET /`: one self-contained HTML page (inline style and script, no
 * external asset, so it works on a peer with no internet) that reads `status` (GET /status, relative to the page)
 * every second and shows the node live: identity, item rates, copies per delivery, validation latency, link bytes,
 * the links table, handshakes and local modules. Columns for a link's broadcast-tree role and its score appear when
 * /status has them.
 *
 * Must never: load anything from another origin (the Content-Security-Policy below forbids it, so a mistake shows up
 * as a console error in test/dashboard.test.ts), or insert text from the node (peer IDs, addresses, reasons) as HTML:
 * peers choose some of it, so it goes in through textContent only. No template literals or `${` in the page's
 * script: it sits inside TypeScript template strings here.
 */
import { createHash } from "node:crypto";

const STYLE = String.raw`
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2430; --dim: #6a7384; --line: #e1e4ea; --accent: #2f6fdb;
  --good: #1f8a4c; --bad: #c23b3b; --warn: #b7791f; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 32px; background: var(--bg); color: var(--ink); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 20px; margin-bottom: 14px; }
h1 { font-size: 18px; margin: 0; }
h1 code { font-size: 13px; color: var(--dim); font-weight: normal; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--dim); margin: 0 0 8px; }
#meta { color: var(--dim); }
#state { margin-left: auto; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: var(--line); }
#state.ok { background: #dff3e6; color: var(--good); }
#state.down { background: #f8dddd; color: var(--bad); }
section, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 14px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px; background: none; border: 0; padding: 0; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.tile .label { color: var(--dim); font-size: 12px; }
.tile .value { font-size: 22px; font-variant-numeric: tabular-nums; }
.tile .sub { color: var(--dim); font-size: 12px; font-variant-numeric: tabular-nums; }
.tile.bad .value { color: var(--bad); }
#chart { width: 100%; height: 120px; display: block; }
.legend span { margin-right: 14px; font-size: 12px; color: var(--dim); }
.legend i { display: inline-block; width: 10px; height: 3px; margin-right: 5px; vertical-align: middle; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--dim); font-weight: normal; font-size: 12px; }
td.num, th.num { text-align: right; }
td code { font-size: 12px; }
.opt { display: none; }
table.has-role .opt-role, table.has-score .opt-score { display: table-cell; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 14px; }
.grid2 section { margin: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }
dt { color: var(--dim); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.empty { color: var(--dim); }
.c-received { background: #2f6fdb; } .c-forwarded { background: #1f8a4c; } .c-duplicate { background: #b7791f; } .c-announced { background: #8a4fd3; }
footer { color: var(--dim); font-size: 12px; margin-top: 8px; }
footer a { color: var(--accent); }
`;

const SCRIPT = String.raw`
"use strict";
var WINDOW = 60;       // seconds of history in the chart
var SMOOTH = 10;       // seconds over which copies per delivery and validation latency are taken
var samples = [];      // { t: seconds (browser clock), s: status document }
var RATES = ["announced", "received", "forwarded", "duplicate", "invalid"];
var CHART = [["received", "#2f6fdb"], ["forwarded", "#1f8a4c"], ["duplicate", "#b7791f"], ["announced", "#8a4fd3"]];

function el(id) { return document.getElementById(id); }
function put(id, text) { el(id).textContent = text; }
function make(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function bytes(n) {
  if (n < 1024) return Math.round(n) + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}
function duration(sec) {
  var s = Math.floor(sec), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  s = s % 60;
  if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m";
  if (m > 0) return m + "m " + String(s).padStart(2, "0") + "s";
  return s + "s";
}
function ms(seconds) { return seconds < 0.001 ? (seconds * 1000).toFixed(2) + " ms" : (seconds * 1000).toFixed(1) + " ms"; }
function perSecond(x) { return x >= 100 ? x.toFixed(0) : x.toFixed(1); }

/** The sample about 'ago' seconds before the newest (or the oldest there is). */
function before(ago) {
  var last = samples[samples.length - 1];
  for (var i = samples.length - 2; i >= 0; i--) if (last.t - samples[i].t >= ago) return samples[i];
  return samples.length > 1 ? samples[0] : undefined;
}

/** Upper bound of the bucket that holds the q-quantile of the observations between two histogram snapshots. */
function quantile(now, old, q) {
  var total = now.count - old.count;
  if (total <= 0) return undefined;
  for (var i = 0; i < now.buckets.length; i++) {
    if (now.buckets[i].count - old.buckets[i].count >= q * total) return now.buckets[i].le;
  }
  return "+Inf";
}

function renderRates(s, prev, dt) {
  RATES.forEach(function (k) {
    put("rate-" + k, prev ? perSecond((s.items[k] - prev.s.items[k]) / dt) : "–");
    put("total-" + k, s.items[k] + " total");
  });
  el("tile-invalid").classList.toggle("bad", !!prev && s.items.invalid > prev.s.items.invalid);
  var old = before(SMOOTH);
  if (old) {
    var delivered = s.items.valid - old.s.items.valid + s.items.announced - old.s.items.announced;
    var copies = s.items.forwarded - old.s.items.forwarded;
    put("copies", delivered > 0 ? (copies / delivered).toFixed(2) : "–");
    var v = s.validation, ov = old.s.validation, n = v.count - ov.count;
    put("validation", n > 0 ? ms((v.sum_seconds - ov.sum_seconds) / n) : "–");
    var p99 = quantile(v, ov, 0.99);
    put("validation-sub", n > 0 ? "p99 ≤ " + (p99 === "+Inf" ? "∞" : ms(p99)) + ", " + n + " in " + SMOOTH + " s" : v.count + " total");
  }
  if (prev) {
    put("bytes-in", bytes((s.link_bytes.received - prev.s.link_bytes.received) / dt) + "/s");
    put("bytes-out", "out " + bytes((s.link_bytes.sent - prev.s.link_bytes.sent) / dt) + "/s");
  }
}

function renderChart() {
  var svg = el("chart"), w = 600, h = 120;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var points = {}, max = 1;
  CHART.forEach(function (c) { points[c[0]] = []; });
  for (var i = 1; i < samples.length; i++) {
    var a = samples[i - 1], b = samples[i], dt = b.t - a.t;
    if (dt <= 0) continue;
    CHART.forEach(function (c) {
      var r = (b.s.items[c[0]] - a.s.items[c[0]]) / dt;
      max = Math.max(max, r);
      points[c[0]].push([b.t, r]);
    });
  }
  var end = samples.length ? samples[samples.length - 1].t : 0;
  CHART.forEach(function (c) {
    var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points[c[0]].map(function (p) {
      return ((1 - (end - p[0]) / WINDOW) * w).toFixed(1) + "," + (h - 4 - (p[1] / max) * (h - 8)).toFixed(1);
    }).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", c[1]);
    line.setAttribute("stroke-width", "2");
    svg.appendChild(line);
  });
  put("chart-max", "max " + perSecond(max) + "/s");
}

function renderLinks(s) {
  var table = el("links"), body = table.tBodies[0];
  var hasRole = s.links.some(function (l) { return l.role !== undefined; });
  var hasScore = s.links.some(function (l) { return l.score !== undefined; });
  table.classList.toggle("has-role", hasRole);
  table.classList.toggle("has-score", hasScore);
  put("link-count", String(s.links.length));
  while (body.firstChild) body.removeChild(body.firstChild);
  if (s.links.length === 0) {
    var none = make("tr");
    var cell = make("td", "no links", "empty");
    cell.colSpan = 9;
    none.appendChild(cell);
    body.appendChild(none);
  }
  s.links.forEach(function (l) {
    var tr = make("tr");
    tr.dataset.peer = l.peer_id;
    var id = make("td");
    var code = make("code", l.peer_id.slice(0, 16));
    code.title = l.peer_id;
    id.appendChild(code);
    tr.appendChild(id);
    tr.appendChild(make("td", l.address));
    tr.appendChild(make("td", l.inbound ? "← in" : "→ out"));
    tr.appendChild(make("td", duration(l.age_seconds), "num"));
    tr.appendChild(make("td", bytes(l.bytes_in), "num"));
    tr.appendChild(make("td", bytes(l.bytes_out), "num"));
    tr.appendChild(make("td", String(l.dropped), "num"));
    tr.appendChild(make("td", l.role === undefined ? "" : l.role, "opt opt-role"));
    tr.appendChild(make("td", l.score === undefined ? "" : String(l.score), "num opt opt-score"));
    body.appendChild(tr);
  });
}

function renderList(id, rows) {
  var dl = el(id);
  while (dl.firstChild) dl.removeChild(dl.firstChild);
  rows.forEach(function (r) { dl.appendChild(make("dt", r[0])); dl.appendChild(make("dd", r[1])); });
}

function render(s, now) {
  var prev = samples.length ? samples[samples.length - 1] : undefined;
  samples.push({ t: now, s: s });
  while (samples.length > 1 && now - samples[0].t > WINDOW + 1) samples.shift();
  document.title = "gossip " + s.peer_id.slice(0, 8) + " · " + s.links.length + " links";
  put("peer-id", s.peer_id);
  put("meta", "version " + s.version + " (" + s.commit + ") · up " + duration(s.uptime_seconds) +
    " · api " + s.listen.api + " · p2p " + s.listen.p2p);
  renderRates(s, prev, prev ? now - prev.t : 1);
  renderChart();
  renderLinks(s);
  var failed = Object.keys(s.handshakes.failed).sort().map(function (k) { return [k, String(s.handshakes.failed[k])]; });
  renderList("handshakes", [["completed", String(s.handshakes.completed)], ["pending", String(s.handshakes.pending)]]
    .concat(failed.length ? failed.map(function (f) { return ["failed: " + f[0], f[1]]; }) : [["failed", "0"]]));
  renderList("local", [
    ["subscriptions", s.subscriptions.map(function (x) { return x.data_type + " (" + x.subscribers + ")"; }).join(", ") || "none"],
    ["api connections", String(s.api_connections)],
    ["validations", s.validations_outstanding + " outstanding"],
    ["unanswered", String(s.items.unanswered)],
    ["dropped (busy)", String(s.items.dropped_busy)],
    ["cache", s.cache.items + "/" + s.cache.capacity + " items, " + s.cache.seen_ids + " seen IDs"],
    ["candidates", s.membership.candidates + " known, " + s.membership.dialing + " dialing"],
  ]);
}

function state(text, cls) {
  var e = el("state");
  e.textContent = text;
  e.className = cls;
}

function tick() {
  fetch("status", { cache: "no-store" })
    .then(function (r) { if (!r.ok) throw new Error("status " + r.status); return r.json(); })
    .then(function (s) {
      try {
        render(s, performance.now() / 1000);
        state("live · " + new Date().toLocaleTimeString(), "ok");
      } catch (e) {
        console.error("dashboard: cannot show this status document:", e); // our bug, not the node's absence
        state("display error: " + e.message, "down");
      }
    }, function (e) { state("node unreachable (" + e.message + "), retrying", "down"); })
    .then(function () { setTimeout(tick, 1000); });
}
tick();
`;

const TILES = [
  ["announced", "announced / s"],
  ["received", "received / s"],
  ["forwarded", "forwarded / s"],
  ["duplicate", "duplicates / s"],
  ["invalid", "invalid / s"],
]
  .map(([k, label]) => `<div class="tile" id="tile-${k}"><div class="label">${label}</div><div class="value" id="rate-${k}">–</div><div class="sub" id="total-${k}"></div></div>`)
  .join("\n");

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>gossip node</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>gossip node <code id="peer-id"></code></h1><div id="meta"></div><div id="state">connecting…</div></header>
<section class="tiles">
${TILES}
<div class="tile"><div class="label">copies / delivery</div><div class="value" id="copies">–</div><div class="sub">sent per item taken in, 10 s</div></div>
<div class="tile"><div class="label">validation</div><div class="value" id="validation">–</div><div class="sub" id="validation-sub"></div></div>
<div class="tile"><div class="label">link bytes in</div><div class="value" id="bytes-in">–</div><div class="sub" id="bytes-out"></div></div>
</section>
<section><h2>Items per second, last 60 s <span id="chart-max"></span></h2>
<svg id="chart" viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label="items per second"></svg>
<div class="legend"><span><i class="c-received"></i>received</span><span><i class="c-forwarded"></i>forwarded</span><span><i class="c-duplicate"></i>duplicates</span><span><i class="c-announced"></i>announced</span></div>
</section>
<section><h2>Links (<span id="link-count">0</span>)</h2>
<table id="links"><thead><tr><th>peer</th><th>address</th><th>direction</th><th class="num">age</th><th class="num">in</th><th class="num">out</th><th class="num">dropped</th><th class="opt opt-role">role</th><th class="num opt opt-score">score</th></tr></thead><tbody></tbody></table>
</section>
<div class="grid2">
<section><h2>Handshakes</h2><dl id="handshakes"></dl></section>
<section><h2>Local modules, cache, membership</h2><dl id="local"></dl></section>
</div>
<footer>Refreshed every second from <a href="status">/status</a> · Prometheus metrics at <a href="metrics">/metrics</a></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/** Only the page's own inline style and script run, and it may talk only to its own origin. */
export const DASHBOARD_CSP =
  `default-src 'none'; script-src ${sha256(SCRIPT)}; style-src ${sha256(STYLE)}; connect-src 'self'; ` +
  `img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
