import { isIP } from "node:net";
import parseForwarded from "forwarded-parse";
import proxyaddr from "proxy-addr";

/** What the client address is read from: the peer, and the headers proxies add. */
export interface AddressedRequest {
  readonly socket?: { readonly remoteAddress?: string | undefined } | null;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The address of the caller a request comes from, which anonymous calls are rate-limited by. */
export type ClientAddressOf = (req: AddressedRequest) => string;

/**
 * The client address as TRUSTED_PROXIES allows it to be known. With no proxy
 * trusted it is the socket's peer, and no header is read. Otherwise the hops
 * a trusted peer reports (`Forwarded`'s `for=`, RFC 7239, or else
 * `X-Forwarded-For`) are walked from the nearest: the first address that is
 * not a trusted proxy is the client. A hop a trusted proxy could not name
 * (`unknown`, an obfuscated id, garbage) ends the walk at that proxy, so no
 * caller can choose the address it is limited under.
 *
 * proxy-addr (Express's) matches the CIDRs; it reads X-Forwarded-For only,
 * so the walk itself is here, over both headers.
 */
export function clientAddressResolver(trustedProxies: readonly string[]): ClientAddressOf {
  const peerOf = (req: AddressedRequest): string => unmapped(req.socket?.remoteAddress ?? "unknown");
  if (trustedProxies.length === 0) return peerOf;
  const trusted = proxyaddr.compile([...trustedProxies]);
  return (req) => {
    let address = peerOf(req);
    if (isIP(address) === 0 || !trusted(address, 0)) return address;
    const hops = reportedHops(req.headers);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] as string;
      if (isIP(hop) === 0) return address;
      address = hop;
      if (!trusted(hop, hops.length - i)) return hop;
    }
    return address;
  };
}

/** The hops a proxy chain reports, the client first: Forwarded's `for=` when present, else X-Forwarded-For. */
function reportedHops(headers: AddressedRequest["headers"]): string[] {
  const forwarded = joined(headers.forwarded);
  if (forwarded !== undefined) {
    try {
      return parseForwarded(forwarded).map((element) => unmapped(nodeOf(element.for ?? "")));
    } catch {
      return ["invalid"]; // a malformed header names no one
    }
  }
  const xff = joined(headers["x-forwarded-for"]);
  return xff === undefined ? [] : xff.split(",").map((hop) => unmapped(hop.trim()));
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}

/** RFC 7239 §6: `192.0.2.1:8080`, `"[2001:db8::1]:4711"` (quotes already removed by the parser), `unknown`, `_hidden`. */
function nodeOf(node: string): string {
  if (node.startsWith("[")) return node.slice(1, node.indexOf("]"));
  const colon = node.indexOf(":");
  return colon !== -1 && node.indexOf(":", colon + 1) === -1 ? node.slice(0, colon) : node;
}

/** `::ffff:192.0.2.1` (an IPv4 peer on a dual-stack socket) is 192.0.2.1. */
function unmapped(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
