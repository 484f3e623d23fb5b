import { setTimeout as sleep } from "node:timers/promises";
import type { Storage } from "../adapters/storage/open-storage.js";
import type { Readiness } from "../shared/health.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";

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
    while (!stopped.signal.aborted) {
      const ok = await Promise.race([
        storage.ping().then(
          () => true,
          () => false,
        ),
        sleep(timeoutMs, false, { ref: false }),
      ]);
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
