/**
 * `gossip/client`: the package entry for modules written in TypeScript or JavaScript on Bun (package.json "exports").
 * Re-exports only; README "Writing a module" documents it. Must never export internals a module could misuse (the
 * raw ApiClient stays behind this entry, for the tools and tests).
 */
export { connect, GossipClient, type AnnounceOptions, type ConnectOptions, type Notification } from "./gossip-client.ts";
export { ApiClientError } from "../errors.ts";
