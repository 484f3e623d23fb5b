import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { openStorage, type Storage } from "../../src/adapters/storage/open-storage.js";
import { type ApiConfig, apiConfigFromEnv } from "../../src/config/api-config.js";
import { type GatewayConfig, gatewayConfigFromEnv } from "../../src/config/gateway-config.js";
import { mintToken } from "../../src/gateway/auth.js";
import type { Resolve } from "../../src/gateway/upstream/endpoint-set.js";
import { startApiServer } from "../../src/servers/api-server.js";
import { startGateway } from "../../src/servers/gateway-server.js";
import type { RunningServer } from "../../src/servers/running-server.js";
import { LogCapture } from "./log-capture.js";
import { freshPostgresSchema } from "./postgres.js";

export type Database = "pglite" | "postgres";

/** Gateway settings a test changes; the upstream's are merged into the defaults one level deep. */
export type GatewayOverrides = Omit<Partial<GatewayConfig>, "upstream"> & {
  readonly upstream?: {
    readonly [K in keyof GatewayConfig["upstream"]]?: GatewayConfig["upstream"][K] extends object
      ? Partial<GatewayConfig["upstream"][K]>
      : GatewayConfig["upstream"][K];
  };
};

export interface SystemOptions {
  readonly database?: Database;
  /** A PostgreSQL URL to use as it is (API servers sharing one schema), instead of a fresh schema. */
  readonly databaseUrl?: string;
  /** Wraps the real storage, e.g. to make one call fail the way a broken database would. */
  readonly wrapStorage?: (storage: Storage) => Storage;
  readonly gateway?: GatewayOverrides;
  readonly api?: Partial<ApiConfig>;
}

/** The API server and the gateway, started in-process on ephemeral ports, with captured logs. */
export interface System {
  readonly api: RunningServer;
  readonly gateway: RunningServer;
  readonly apiLogs: LogCapture;
  readonly gatewayLogs: LogCapture;
  readonly gatewayConfig: GatewayConfig;
  token(actorId: string): Promise<string>;
  /** Stops the API server (the gateway keeps running). */
  stopApi(): Promise<void>;
  close(): Promise<void>;
}

export async function startApi(
  options: Pick<SystemOptions, "database" | "databaseUrl" | "wrapStorage" | "api"> = {},
  logs = new LogCapture("api"),
): Promise<{ api: RunningServer; logs: LogCapture; cleanup(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), "bazbii-test-"));
  await cp(inject("pgliteTemplate"), join(dataDir, "pglite"), { recursive: true });
  const pgSchema =
    options.database === "postgres" && options.databaseUrl === undefined ? await freshPostgresSchema() : undefined;
  const databaseUrl = options.databaseUrl ?? pgSchema?.url;
  const base = apiConfigFromEnv({
    NODE_ENV: "test",
    DATA_DIR: dataDir,
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
  });
  const config: ApiConfig = { ...base, port: 0, shutdownGraceMs: 1000, shutdownDrainMs: 0, ...options.api };
  const storage = await openStorage(config.storage);
  const api = await startApiServer(config, {
    log: logs.logger,
    storage: options.wrapStorage ? options.wrapStorage(storage) : storage,
  });
  return {
    api,
    logs,
    async cleanup() {
      await rm(dataDir, { recursive: true, force: true });
      await pgSchema?.drop();
    },
  };
}

/** A gateway in front of whatever listens at `apiUrl` (a comma-separated list): our API servers or a misbehaving peer. */
export async function startGatewayFor(
  apiUrl: string,
  overrides: GatewayOverrides = {},
  logs = new LogCapture("gateway"),
  resolve?: Resolve,
): Promise<{
  gateway: RunningServer;
  config: GatewayConfig;
  logs: LogCapture;
  token(actorId: string): Promise<string>;
}> {
  const defaults = gatewayConfigFromEnv({ NODE_ENV: "test", API_URL: apiUrl });
  const { upstream = {}, ...rest } = overrides;
  const config: GatewayConfig = {
    ...defaults,
    port: 0,
    shutdownGraceMs: 1000,
    shutdownDrainMs: 0,
    ...rest,
    upstream: {
      ...defaults.upstream,
      ...upstream,
      pool: { ...defaults.upstream.pool, ...upstream.pool },
      outliers: { ...defaults.upstream.outliers, ...upstream.outliers },
    } as GatewayConfig["upstream"],
  };
  const gateway = await startGateway(config, { log: logs.logger, ...(resolve === undefined ? {} : { resolve }) });
  return { gateway, config, logs, token: (actorId) => mintToken(config.jwtSecret, actorId) };
}

export async function startSystem(options: SystemOptions = {}): Promise<System> {
  const { api, logs: apiLogs, cleanup } = await startApi(options);
  const { gateway, config: gatewayConfig, logs: gatewayLogs } = await startGatewayFor(api.url, options.gateway);
  let apiStopped = false;
  return {
    api,
    gateway,
    apiLogs,
    gatewayLogs,
    gatewayConfig,
    token: (actorId) => mintToken(gatewayConfig.jwtSecret, actorId),
    async stopApi() {
      apiStopped = true;
      await api.close(0);
    },
    async close() {
      await gateway.close(0);
      if (!apiStopped) await api.close(0);
      await cleanup();
    },
  };
}
