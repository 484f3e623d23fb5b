import { num, port, str, url } from "envalid";
import type { NatsConfig } from "../adapters/events/nats-event-publisher.js";
import type { StorageConfig } from "../adapters/storage/open-storage.js";
import type { HttpLimits } from "../shared/http/http-server.js";
import { commonEnv, readEnv, refuseInProduction } from "./env.js";
import { httpLimitsEnv, httpLimitsFrom } from "./http-limits.js";

export interface ApiConfig {
  readonly env: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  /** INTERNAL_AUTH_SECRET: signs (gateway) and checks (API server) the per-call assertion. */
  readonly internalAuthSecret: string;
  readonly storage: StorageConfig;
  readonly nats: NatsConfig | undefined;
  readonly limits: HttpLimits;
  readonly shutdownGraceMs: number;
  readonly shutdownDrainMs: number;
  /** How often storage is checked while it answers (and 5 times as often while it does not). */
  readonly storageCheckIntervalMs: number;
  /** Honour x-bazbii-fault-* headers (development and tests only). */
  readonly faultInjection: boolean;
}

/** Variables only the API server reads. */
export const apiEnv = {
  API_PORT: port({ default: 8081, desc: "port of the API server (internal: only the gateway calls it)" }),
  DATA_DIR: str({ default: "./data", desc: "where embedded PGlite keeps its files" }),
  DATABASE_URL: url({ default: undefined, desc: "PostgreSQL server to use instead of embedded PGlite" }),
  DB_MAX_CONNECTIONS: num({ default: 10, desc: "PostgreSQL pool size" }),
  NATS_URL: url({ default: undefined, desc: "NATS server to publish domain events to (subjects bazbii.events.*)" }),
  NATS_MAX_RECONNECT_ATTEMPTS: num({ default: -1, desc: "reconnect attempts after losing NATS; -1 for ever" }),
  DB_CONNECT_TIMEOUT_MS: num({ default: 5_000, desc: "waiting longer for a connection fails the call as unavailable" }),
  STORAGE_CHECK_INTERVAL_MS: num({
    default: 1_000,
    desc: "how often the API server checks its storage (five times as often while it is down); readyz and grpc.health.v1 say NOT_SERVING while it does not answer",
  }),
};

/** The API server's configuration, read from the environment once at start-up. */
export function apiConfigFromEnv(source: NodeJS.ProcessEnv = process.env): ApiConfig {
  const env = readEnv(source, { ...commonEnv, ...httpLimitsEnv, ...apiEnv });
  refuseInProduction(env);
  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.API_PORT,
    logLevel: env.LOG_LEVEL,
    internalAuthSecret: env.INTERNAL_AUTH_SECRET,
    storage: {
      databaseUrl: env.DATABASE_URL,
      dataDir: env.DATA_DIR,
      maxConnections: env.DB_MAX_CONNECTIONS,
      connectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    },
    nats:
      env.NATS_URL === undefined
        ? undefined
        : { url: env.NATS_URL, maxReconnectAttempts: env.NATS_MAX_RECONNECT_ATTEMPTS },
    limits: httpLimitsFrom(env),
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    shutdownDrainMs: env.SHUTDOWN_DRAIN_MS,
    storageCheckIntervalMs: env.STORAGE_CHECK_INTERVAL_MS,
    faultInjection: env.FAULT_INJECTION,
  };
}
