import { ConfigError } from "../config/env.js";
import type { RunningServer } from "../servers/running-server.js";
import { backportAsyncResourceBind } from "../shared/runtime/async-resource-bind.js";

/**
 * Runs servers until SIGTERM or SIGINT, then stops them gracefully (the last
 * one started stops first) and exits 0. A bad configuration exits 1 with the
 * variable named; any other start-up failure exits 1 with its cause.
 */
export async function runUntilSignalled(start: () => Promise<RunningServer[]>): Promise<void> {
  backportAsyncResourceBind(); // process-wide, before any HTTP/2 session exists
  let servers: RunningServer[];
  try {
    servers = await start();
  } catch (err) {
    process.stderr.write(
      `${err instanceof ConfigError ? err.message : `failed to start: ${String((err as Error)?.stack ?? err)}`}\n`,
    );
    process.exit(1);
  }
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const server of [...servers].reverse()) await server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
