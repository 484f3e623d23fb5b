import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import type { Endpoint, EndpointHealth } from "./endpoint.js";

/** How long a health check (the probe of an ejected endpoint) may take. */
const CHECK_TIMEOUT_MS = 1_000;

function healthOf(status: Status): EndpointHealth {
  return status === Status.SERVING ? "serving" : "not_serving";
}

/**
 * What an endpoint's failed health call says of it: unchecked when something
 * answered that has no health service (unimplemented: a peer or proxy that is
 * not our API server), which leaves the endpoint to passive outlier
 * detection; otherwise (refused, reset, torn down with the server) unreachable.
 */
function healthAfter(err: unknown): EndpointHealth {
  return ConnectError.from(err).code === Code.Unimplemented ? "unchecked" : "unreachable";
}

/**
 * Active health (grpc.health.v1): a Watch stream per endpoint, so a server
 * that starts draining or loses its storage is taken out the moment it says
 * NOT_SERVING. A stream that breaks is opened again at once, and then every
 * `intervalMs` while the endpoint cannot be reached (the probe that brings a
 * restarted server back).
 */
export function watchHealth(
  endpoint: Endpoint,
  intervalMs: number,
  onChange: (endpoint: Endpoint, health: EndpointHealth) => void,
): { stop(): void } {
  const stopped = new AbortController();
  const set = (health: EndpointHealth): void => {
    if (endpoint.health === health) return;
    endpoint.health = health;
    onChange(endpoint, health);
  };
  const client = createClient(Health, endpoint.pool.grpc);
  void (async () => {
    // A stream that breaks once is opened again at once (a dropped connection);
    // failing twice in a row, the endpoint is unreachable until a watch answers.
    let failuresInRow = 0;
    while (!stopped.signal.aborted) {
      try {
        for await (const { status } of client.watch({ service: "" }, { signal: stopped.signal })) {
          failuresInRow = 0;
          set(healthOf(status));
        }
      } catch (err) {
        if (stopped.signal.aborted) return;
        const health = healthAfter(err);
        if (health === "unchecked") {
          set(health); // no health service there: nothing to watch
          return;
        }
        if (++failuresInRow > 1) set(health);
      }
      if (failuresInRow > 1) await sleep(intervalMs, undefined, { signal: stopped.signal }).catch(() => {});
    }
  })();
  return { stop: () => stopped.abort() };
}

/** One health check: whether the endpoint answers (the probe of an ejected endpoint). */
export async function checkHealth(endpoint: Endpoint): Promise<boolean> {
  try {
    const { status } = await createClient(Health, endpoint.pool.grpc).check({}, { timeoutMs: CHECK_TIMEOUT_MS });
    return status === Status.SERVING;
  } catch (err) {
    return healthAfter(err) === "unchecked"; // it answered, without a health service
  }
}
