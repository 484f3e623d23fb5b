import { setTimeout as sleep } from "node:timers/promises";
import type { Storage } from "../adapters/storage/open-storage.js";
import type { Readiness } from "../shared/health.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";

/**
 * Pings that only time out, in a row, before the storage counts as down. A
 * busy database is not an unreachable one: embedded PGlite answers one query
 * at a time, so a ping can queue behind a flood of writes or a thousand watch
 * snapshots. Declaring it down then would make the gateways refuse every call
 * to the one server that is in fact working. A ping that fails (connection
 * refused, reset, the database shutting down) counts at once.
 */
const SLOW_PINGS_BEFORE_DOWN = 3;

/**
 * Keeps the API server's readiness in step with its storage: a trivial query
 * every `intervalMs` while the storage answers, five times as often while it
 * does not, so that gateways stop sending calls that could only fail while
 * the database is down, and send them again within a fraction of a second of
 * its return (readyz, grpc.health.v1 Watch).
 */
export function watchStorage(
  storage: Pick<Storage, "ping">,
  intervalMs: number,
  readiness: Readiness,
  log: Logger,
): { stop(): void } {
  const stopped = new AbortController();
  const timeoutMs = Math.max(100, Math.min(intervalMs, 1_000));
  void (async () => {
    let up = true;
    let slowInRow = 0;
    while (!stopped.signal.aborted) {
      const ping = await Promise.race([
        storage.ping().then(
          () => "answered" as const,
          () => "failed" as const,
        ),
        sleep(timeoutMs, "slow" as const, { ref: false }),
      ]);
      slowInRow = ping === "slow" ? slowInRow + 1 : 0;
      const ok: boolean = ping === "answered" || (ping === "slow" && up && slowInRow < SLOW_PINGS_BEFORE_DOWN);
      if (ok !== up && !stopped.signal.aborted) {
        up = ok;
        readiness.dependency(ok);
        (ok ? logmsg.StorageUp : logmsg.StorageDown).emit(log, {});
      }
      await sleep(up ? intervalMs : Math.max(20, Math.floor(intervalMs / 5)), undefined, {
        signal: stopped.signal,
        ref: false,
      }).catch(() => {});
    }
  })();
  return { stop: () => stopped.abort() };
}
