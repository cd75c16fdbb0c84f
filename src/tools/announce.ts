/**
 * `gossip announce`: sends one GOSSIP ANNOUNCE to a node through the VoidPhone API, as a local module would, and
 * closes once the node has the bytes. The protocol has no reply; success means the node accepted the connection
 * and the message went out before it closed.
 */
import { formatHostPort, type HostPort } from "../address.ts";
import { MAX_DATA_SIZE } from "../api/codec.ts";
import { idKey, itemId } from "../gossip/item-id.ts";
import { connectToNode } from "./connect.ts";

export interface AnnounceOptions {
  api: HostPort;
  dataType: number;
  ttl: number;
  data: Uint8Array;
}

/** Returns the line to print on success; throws ToolFailure when the node cannot be reached. */
export async function announce(opts: AnnounceOptions): Promise<string> {
  if (opts.data.length > MAX_DATA_SIZE) throw new RangeError(`data is ${opts.data.length} bytes; at most ${MAX_DATA_SIZE} fit one ANNOUNCE`);
  const conn = await connectToNode(opts.api);
  conn.announce(opts.dataType, opts.data, { ttl: opts.ttl });
  await conn.close();
  const id = idKey(itemId(opts.dataType, opts.data));
  return `announced ${opts.data.length} bytes, type ${opts.dataType}, ttl ${opts.ttl}, item ${id} via ${formatHostPort(opts.api)}`;
}
