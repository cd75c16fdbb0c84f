/**
 * How the tools reach a node's VoidPhone API: the client library (src/client/gossip-client.ts, the package entry
 * `gossip/client`), with a failure to connect turned into the ToolFailure the CLI reports in one line (exit 1).
 * Nothing else.
 */
import type { HostPort } from "../address.ts";
import { connect, type GossipClient } from "../client/gossip-client.ts";
import { ApiClientError, ToolFailure } from "../errors.ts";

export async function connectToNode(api: HostPort): Promise<GossipClient> {
  try {
    return await connect(api);
  } catch (e) {
    if (e instanceof ApiClientError) throw new ToolFailure(e.code, e.message);
    throw e;
  }
}
