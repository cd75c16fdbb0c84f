/**
 * How the tools reach a node's VoidPhone API: the shared client (src/client/api-client.ts), with a failure to connect
 * turned into the ToolFailure the CLI reports in one line (exit 1). Nothing else.
 */
import type { HostPort } from "../address.ts";
import { ApiClient } from "../client/api-client.ts";
import { ApiClientError, ToolFailure } from "../errors.ts";

export async function connectToNode(api: HostPort): Promise<ApiClient> {
  try {
    return await ApiClient.connect(api);
  } catch (e) {
    if (e instanceof ApiClientError) throw new ToolFailure(e.code, e.message);
    throw e;
  }
}
