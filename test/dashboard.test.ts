/**
 * The dashboard (GET / on the control address) in a real headless Chromium against a real 3-node network: the links
 * table lists the node's two peers, the items/s figures move when items are announced, nothing is loaded from another
 * origin and the console stays free of errors. Driven with playwright-core (Debian's chromium, which .ci/run installs
 * when missing); skipped, saying so, when there is no chromium binary. GOSSIP_DASHBOARD_SCREENSHOT=path writes the
 * screenshot that docs/dashboard.png is made from.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { DASHBOARD_CSP } from "../src/control/dashboard.ts";
import { startTestnet, type Testnet } from "../src/testnet/network.ts";
import { waitFor } from "./wait-for.ts";

const CHROMIUM = [Bun.which("chromium"), "/usr/bin/chromium"].find((p): p is string => p !== null && existsSync(p));
if (CHROMIUM === undefined) console.warn("test/dashboard.test.ts: skipped: no chromium binary (apt-get install -y chromium; .ci/run does)");
/** The launch flags this machine needs (no network beyond loopback: background services would only fail). */
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const DATA_TYPE = 4242;
/** Launching Chromium and two refreshes of the page take a few seconds on a loaded machine. */
const BROWSER_TIMEOUT = 30_000;

let net: Testnet;
let browser: Browser;

beforeAll(async () => {
  if (CHROMIUM === undefined) return;
  // playwright-core gives every launch a fresh temporary profile (--user-data-dir), removed when it closes.
  [net, browser] = await Promise.all([
    startTestnet({ nodes: 3, controlBasePort: 0, powDifficulty: 4, dataTypes: [DATA_TYPE] }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await net?.stop();
});

test.skipIf(CHROMIUM === undefined)("the dashboard in Chromium: two peers listed, items/s moves after announcements, no console errors", async () => {
  const [self, ...others] = net.nodes;
  const origin = `http://127.0.0.1:${self!.controlPort}`;
  const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
  const problems: string[] = [];
  page.on("console", (m) => void (m.type() === "error" && problems.push(`console: ${m.text()}`)));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  page.on("request", (r) => void (!r.url().startsWith(origin + "/") && !r.url().startsWith("data:") && problems.push(`foreign request: ${r.url()}`)));

  const response = await page.goto(origin + "/");
  expect(response?.headers()["content-security-policy"]).toBe(DASHBOARD_CSP);
  // The links table: one row per peer, keyed by the full peer ID.
  const rows = () => page.$$eval("#links tbody tr[data-peer]", (trs) => trs.map((tr) => tr.getAttribute("data-peer")!).sort());
  const peers = others.map((t) => t.node.identity.idHex).sort();
  await waitFor(async () => JSON.stringify(await rows()) === JSON.stringify(peers), 10_000, "both peers in the links table", 50);
  expect(await page.textContent("#peer-id")).toBe(self!.node.identity.idHex);
  expect(await page.textContent("#link-count")).toBe("2");

  // Quiet network: once two samples are in, the rate reads 0; items announced on every node then make it move.
  const rate = async (k: string) => Number(await page.textContent(`#rate-${k}`));
  await waitFor(async () => (await rate("received")) === 0, 10_000, "a received rate of 0 before any announcement", 50);
  let seq = 0;
  const announcer = setInterval(() => net.announce(seq % 3, DATA_TYPE, new TextEncoder().encode(`item ${seq++}`)), 50);
  try {
    await waitFor(async () => (await rate("received")) > 0, 10_000, "received items/s above 0", 50);
    await waitFor(async () => (await rate("forwarded")) > 0, 10_000, "forwarded items/s above 0", 50);
    await waitFor(async () => (await page.textContent("#copies")) !== "–", 10_000, "copies per delivery", 50);
    await waitFor(async () => /ms$/.test((await page.textContent("#validation")) ?? ""), 10_000, "validation latency", 50);
    if (process.env.GOSSIP_DASHBOARD_SCREENSHOT) {
      await Bun.sleep(8000); // a few seconds of traffic in the chart
      await page.screenshot({ path: process.env.GOSSIP_DASHBOARD_SCREENSHOT });
    }
  } finally {
    clearInterval(announcer);
  }
  expect(await page.textContent("#state")).toStartWith("live");
  expect(problems).toEqual([]);
  await page.close();
}, BROWSER_TIMEOUT + (process.env.GOSSIP_DASHBOARD_SCREENSHOT ? 10_000 : 0));
