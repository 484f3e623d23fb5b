import type { Endpoint } from "./endpoint.js";

/**
 * Least request with the power of two random choices (Envoy's LEAST_REQUEST,
 * Mitzenmacher): of two endpoints drawn at random, the one with fewer calls
 * in flight. It spreads load almost as well as scanning every endpoint, costs
 * O(1), and a slow endpoint, whose calls pile up, gets fewer new ones.
 */
export function pickLeastRequest(candidates: readonly Endpoint[]): Endpoint | undefined {
  const n = candidates.length;
  if (n <= 1) return candidates[0];
  const i = Math.floor(Math.random() * n);
  const j = (i + 1 + Math.floor(Math.random() * (n - 1))) % n;
  const a = candidates[i] as Endpoint;
  const b = candidates[j] as Endpoint;
  return b.inFlight < a.inFlight ? b : a;
}
