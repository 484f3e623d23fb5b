import { Code, ConnectError } from "@connectrpc/connect";
import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from "cockatiel";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError, reasonOf } from "../shared/errors/public-error.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import type { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import type { RequestContext } from "../shared/request-context.js";

export interface BreakerConfig {
  /** Consecutive unavailable answers (or transport failures) that open the circuit. */
  readonly consecutiveFailures: number;
  /** How long the circuit stays open before one probe call is let through. */
  readonly halfOpenAfterMs: number;
}

export interface UpstreamBreaker {
  /**
   * Runs an upstream call through the breaker. `call` must throw canonical
   * ConnectErrors; `unavailable` ones (but injected faults) count as failures. While the circuit is
   * open, calls fail at once with CIRCUIT_OPEN and the time left as RetryInfo.
   */
  run<T>(call: () => Promise<T>, rc: RequestContext): Promise<T>;
}

/** While half-open, a second call waits this long at least before trying again. */
const HALF_OPEN_RETRY_MS = 100;

export function createUpstreamBreaker(
  upstream: string,
  config: BreakerConfig,
  log: Logger,
  metrics: ProtectionMetrics,
): UpstreamBreaker {
  const policy = circuitBreaker(
    // Injected faults test clients; they must not trip the protection every caller shares.
    handleWhen(
      (err) => err instanceof ConnectError && err.code === Code.Unavailable && reasonOf(err) !== "FAULT_INJECTED",
    ),
    { halfOpenAfter: config.halfOpenAfterMs, breaker: new ConsecutiveBreaker(config.consecutiveFailures) },
  );
  let openedAt = 0;
  metrics.breakerState(upstream, "closed");
  policy.onBreak(() => {
    openedAt = Date.now();
    metrics.breakerState(upstream, "open");
    logmsg.CircuitOpened.emit(log, { upstream, consecutive_failures: config.consecutiveFailures });
  });
  policy.onHalfOpen(() => {
    metrics.breakerState(upstream, "half_open");
    logmsg.CircuitHalfOpen.emit(log, { upstream });
  });
  policy.onReset(() => {
    metrics.breakerState(upstream, "closed");
    logmsg.CircuitClosed.emit(log, { upstream });
  });
  return {
    async run(call, rc) {
      try {
        return await policy.execute(call);
      } catch (err) {
        if (!(err instanceof BrokenCircuitError)) throw err;
        const left =
          policy.state === CircuitState.Open ? config.halfOpenAfterMs - (Date.now() - openedAt) : HALF_OPEN_RETRY_MS;
        throw publicError(errorCatalog.CIRCUIT_OPEN, rc, {
          retryDelayMs: Math.max(HALF_OPEN_RETRY_MS, left),
          cause: err,
        });
      }
    },
  };
}
