import type { Readiness } from "../shared/health.js";
import type { HttpServer } from "../shared/http/http-server.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly readiness: Readiness;
  /** Graceful stop: refuse new work, finish what is in flight (up to the grace period), release resources. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Declares a started process ready (SYS_001) and gives it the one way both
 * processes stop: not ready, SYS_002, drain HTTP, then release what the
 * process holds (storage, upstream sessions, ...).
 */
export function serving(
  http: HttpServer,
  readiness: Readiness,
  log: Logger,
  startedFields: Record<string, unknown>,
  defaultGraceMs: number,
  release: () => Promise<void>,
): RunningServer {
  readiness.set(true);
  logmsg.ServerStarted.emit(log, { url: http.url, ...startedFields });
  return {
    url: http.url,
    port: http.port,
    readiness,
    async close(graceMs = defaultGraceMs) {
      readiness.set(false);
      logmsg.ServerStopping.emit(log, { url: http.url });
      await http.close(graceMs);
      await release();
    },
  };
}
