/**
 * The control HTTP server on `control_address` (off unless configured): GET / (the live dashboard, one
 * self-contained page: src/control/dashboard.ts), GET /metrics (Prometheus text 0.0.4) and GET /status (JSON). Read-only: it never changes node state, and a failure while rendering answers 500 for that
 * request only. Anyone who can reach the address can read the node's peers, so bind it to loopback unless the
 * network in between is trusted.
 */
import type { Server } from "bun";
import type { Logger } from "../log.ts";
import { DASHBOARD_CSP, DASHBOARD_HTML } from "./dashboard.ts";
import { nodeMetrics } from "./metrics.ts";
import { CONTENT_TYPE, renderExposition } from "./prometheus.ts";
import type { ControlSource } from "./source.ts";
import { nodeStatus } from "./status.ts";

export interface ControlServerOptions {
  host: string;
  port: number;
  source: ControlSource;
  log: Logger;
}

const ROUTES = ["/", "/metrics", "/status"];

export class ControlServer {
  private server: Server<undefined> | undefined;

  constructor(private readonly opts: ControlServerOptions) {}

  get port(): number {
    if (this.server === undefined) throw new Error("ControlServer not started");
    return this.server.port!;
  }

  start(): void {
    this.server = Bun.serve({
      hostname: this.opts.host,
      port: this.opts.port,
      fetch: (req) => this.handle(req),
      error: (error) => {
        this.opts.log.error("control request failed", { error });
        return new Response("internal error\n", { status: 500 });
      },
    });
  }

  async stop(): Promise<void> {
    await this.server?.stop(true);
    this.server = undefined;
  }

  private handle(req: Request): Response {
    const path = new URL(req.url).pathname;
    if (!ROUTES.includes(path)) return new Response("not found: try /, /metrics or /status\n", { status: 404 });
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/") {
      return new Response(DASHBOARD_HTML, {
        headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": DASHBOARD_CSP, "cache-control": "no-store" },
      });
    }
    if (path === "/metrics") {
      return new Response(renderExposition(nodeMetrics(this.opts.source)), { headers: { "content-type": CONTENT_TYPE } });
    }
    return Response.json(nodeStatus(this.opts.source));
  }
}
