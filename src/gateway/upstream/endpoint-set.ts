import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/** Resolves a host name to its addresses (dns.lookup with all: true, as Node connects). */
export type Resolve = (host: string) => Promise<readonly string[]>;

export const resolveAll: Resolve = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

export interface EndpointSetEvents {
  /** A new endpoint, by its URL (http://address:port). */
  added(url: URL): void;
  /** An endpoint its name no longer resolves to: drain it, do not cut it. */
  removed(url: URL): void;
  /** A name could not be resolved; the endpoints it had stay. */
  resolveFailed(host: string, err: unknown): void;
}

/**
 * Discovery (Envoy's STRICT_DNS cluster, grpc-go's dns resolver): API_URL's
 * URLs, each an endpoint when its host is an address, else one endpoint per
 * address its name resolves to, resolved again every `intervalMs` (a headless
 * Kubernetes Service names every pod). A failed resolution changes nothing.
 */
export async function watchEndpointSet(
  urls: readonly string[],
  intervalMs: number,
  events: EndpointSetEvents,
  resolve: Resolve = resolveAll,
): Promise<{ stop(): void }> {
  const current = new Map<string, URL>();
  const resolveOnce = async (): Promise<void> => {
    const next = new Map<string, URL>();
    for (const raw of urls) {
      const url = new URL(raw);
      const host = url.hostname.replace(/^\[|\]$/g, "");
      let addresses: readonly string[];
      try {
        addresses = isIP(host) !== 0 ? [host] : await resolve(host);
      } catch (err) {
        events.resolveFailed(host, err);
        for (const [key, known] of current) if (known.searchParams.get("from") === raw) next.set(key, known);
        continue;
      }
      for (const address of addresses) {
        const endpoint = new URL(url.origin);
        endpoint.hostname = isIP(address) === 6 ? `[${address}]` : address;
        endpoint.searchParams.set("from", raw); // which configured URL it came from, for failed resolutions
        next.set(endpoint.origin, endpoint);
      }
    }
    for (const [key, url] of next) if (!current.has(key)) events.added(url);
    for (const [key, url] of current) if (!next.has(key)) events.removed(url);
    current.clear();
    for (const [key, url] of next) current.set(key, url);
  };
  await resolveOnce();
  const needsResolving = urls.some((raw) => isIP(new URL(raw).hostname.replace(/^\[|\]$/g, "")) === 0);
  const timer = needsResolving && intervalMs > 0 ? setInterval(() => void resolveOnce(), intervalMs) : undefined;
  timer?.unref();
  return { stop: () => clearInterval(timer) };
}
