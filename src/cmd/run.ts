import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError } from "../config/env.js";
import type { RunningServer } from "../servers/running-server.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import { createLogger } from "../shared/logging/logger.js";
import { backportAsyncResourceBind } from "../shared/runtime/async-resource-bind.js";

/**
 * Runs servers until SIGTERM or SIGINT (SIGHUP reloads TLS certificates), then stops them gracefully: all drain
 * for SHUTDOWN_DRAIN_MS, then close (the last one started first) and exits 0. A start-up failure exits 1, logged as
 * SYS_003 on stdout like every other line (the configuration is not read yet,
 * so at the default level), and said in plain words on stderr for whoever
 * started it in a terminal: a bad configuration names the variable.
 */
export async function runUntilSignalled(service: string, start: () => Promise<RunningServer[]>): Promise<void> {
  backportAsyncResourceBind(); // process-wide, before any HTTP/2 session exists
  // Listening from the first moment: a signal that comes while the servers
  // start (they are already serving) stops them once they have started.
  let servers: RunningServer[] | undefined;
  let stopRequested = false;
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping || servers === undefined) return;
    stopping = true;
    // All drain at once (load balancers and gateways move away while they still
    // serve), then close, the last started first.
    for (const server of servers) server.drain();
    await sleep(Math.max(0, ...servers.map((s) => s.drainMs)));
    for (const server of [...servers].reverse()) await server.close();
    process.exit(0);
  };
  const onSignal = (): void => {
    stopRequested = true;
    void stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // SIGHUP: read the TLS files again now, as a renewal tool may ask.
  process.on("SIGHUP", () => {
    for (const server of servers ?? []) void server.reloadTls();
  });
  try {
    servers = await start();
  } catch (err) {
    const log = createLogger({ service, level: "info" });
    if (err instanceof ConfigError) {
      logmsg.ServerStartFailed.emit(log, { err: { type: err.name, message: err.message } });
      process.stderr.write(`${err.message}\n`);
    } else {
      logmsg.ServerStartFailed.emit(log, { err });
      process.stderr.write(`failed to start: ${String((err as Error)?.stack ?? err)}\n`);
    }
    process.exit(1);
  }
  if (stopRequested) await stop();
}
