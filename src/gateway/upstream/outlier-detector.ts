import type { Endpoint } from "./endpoint.js";

export interface OutlierConfig {
  /** Consecutive failures (transport failures, unavailable answers) that eject an endpoint. */
  readonly consecutiveFailures: number;
  /** Probe interval of an endpoint ejected once; × the times it was ejected, up to maxEjectionMs. */
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** Endpoints ejected at once at most, in percent of all (at least one). */
  readonly maxEjectionPercent: number;
}

interface OutlierState {
  failures: number;
  /** Times ejected, forgotten slowly: one less for every maxEjectionMs spent in. */
  times: number;
  returnedAt: number;
  probe: NodeJS.Timeout | undefined;
}

export interface OutlierEvents {
  ejected(endpoint: Endpoint, failures: number, probeEveryMs: number): void;
  returned(endpoint: Endpoint, ejectedForMs: number): void;
}

/**
 * Passive health per endpoint (Envoy's outlier detection): an endpoint whose
 * calls fail `consecutiveFailures` times in a row is ejected, unless that would
 * eject more than `maxEjectionPercent` of them (then the failures are the
 * fleet's, not one endpoint's). An ejected endpoint is probed, at first every
 * `baseEjectionMs` and less eagerly each time it is ejected again, and returns
 * as soon as a probe answers: no fixed wait after a restart, and a flapping
 * endpoint is held out longer.
 */
export class OutlierDetector {
  readonly #states = new Map<Endpoint, OutlierState>();

  constructor(
    private readonly config: OutlierConfig,
    private readonly endpoints: () => readonly Endpoint[],
    /** Whether the endpoint answers now (a health check). */
    private readonly probe: (endpoint: Endpoint) => Promise<boolean>,
    private readonly events: OutlierEvents,
  ) {}

  success(endpoint: Endpoint): void {
    const state = this.#states.get(endpoint);
    if (state !== undefined) state.failures = 0;
  }

  failure(endpoint: Endpoint): void {
    const state = this.#stateOf(endpoint);
    state.failures++;
    if (endpoint.ejected || state.failures < this.config.consecutiveFailures || !this.#mayEjectAnother()) return;
    const now = Date.now();
    state.times = Math.max(0, state.times - Math.floor((now - state.returnedAt) / this.config.maxEjectionMs)) + 1;
    endpoint.ejected = true;
    const everyMs = Math.min(this.config.baseEjectionMs * state.times, this.config.maxEjectionMs);
    this.events.ejected(endpoint, state.failures, everyMs);
    this.#probeLater(endpoint, state, everyMs, now);
  }

  /** Stops probing an endpoint that left the set. */
  forget(endpoint: Endpoint): void {
    clearTimeout(this.#states.get(endpoint)?.probe);
    this.#states.delete(endpoint);
  }

  close(): void {
    for (const state of this.#states.values()) clearTimeout(state.probe);
  }

  /** Milliseconds until the next probe of any ejected endpoint: when to come back (RetryInfo). */
  nextProbeInMs(): number | undefined {
    let soonest: number | undefined;
    for (const [endpoint, state] of this.#states) {
      if (!endpoint.ejected) continue;
      const everyMs = Math.min(this.config.baseEjectionMs * state.times, this.config.maxEjectionMs);
      soonest = Math.min(soonest ?? everyMs, everyMs);
    }
    return soonest;
  }

  #probeLater(endpoint: Endpoint, state: OutlierState, everyMs: number, ejectedAt: number): void {
    state.probe = setTimeout(async () => {
      if (!endpoint.ejected || endpoint.removed) return;
      if (await this.probe(endpoint).catch(() => false)) {
        endpoint.ejected = false;
        state.failures = 0;
        state.returnedAt = Date.now();
        this.events.returned(endpoint, state.returnedAt - ejectedAt);
      } else {
        this.#probeLater(endpoint, state, everyMs, ejectedAt);
      }
    }, everyMs);
    state.probe.unref();
  }

  #mayEjectAnother(): boolean {
    const all = this.endpoints().filter((e) => !e.removed);
    const ejected = all.filter((e) => e.ejected).length;
    return ejected < Math.max(1, Math.floor((all.length * this.config.maxEjectionPercent) / 100));
  }

  #stateOf(endpoint: Endpoint): OutlierState {
    let state = this.#states.get(endpoint);
    if (state === undefined) {
      state = { failures: 0, times: 0, returnedAt: 0, probe: undefined };
      this.#states.set(endpoint, state);
    }
    return state;
  }
}
