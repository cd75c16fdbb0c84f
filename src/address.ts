/**
 * `host:port`, `[v6]:port` and `hostname:port` parsing shared by config, CLI and RPS.
 */

export interface HostPort {
  host: string;
  port: number;
}

/** Parses an address; returns an error string instead of throwing so callers can name their key. */
export function parseHostPort(text: string): HostPort | string {
  const trimmed = text.trim();
  let host: string;
  let portText: string;
  if (trimmed.startsWith("[")) {
    const close = trimmed.indexOf("]");
    if (close < 0 || trimmed[close + 1] !== ":") return `"${text}" is not [ipv6]:port`;
    host = trimmed.slice(1, close);
    portText = trimmed.slice(close + 2);
  } else {
    const colon = trimmed.lastIndexOf(":");
    if (colon <= 0) return `"${text}" is not host:port`;
    host = trimmed.slice(0, colon);
    portText = trimmed.slice(colon + 1);
    if (host.includes(":")) return `"${text}": write IPv6 addresses as [addr]:port`;
  }
  if (!/^\d+$/.test(portText)) return `port "${portText}" is not a number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is out of range 1-65535`;
  if (host.length === 0) return `"${text}" has an empty host`;
  return { host, port };
}

/** Loopback hosts (also IPv4-mapped): local test and development nodes share them, so per-IP caps exempt them. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host);
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
