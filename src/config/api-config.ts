import { num, port, str, url } from "envalid";
import type { NatsConfig } from "../adapters/events/nats-event-bus.js";
import type { StorageConfig } from "../adapters/storage/open-storage.js";
import type { HttpLimits } from "../shared/http/http-server.js";
import type { TlsFiles } from "../shared/http/tls-files.js";
import {
  type AdminAddress,
  adminAddressFrom,
  ConfigError,
  commonEnv,
  readEnv,
  refuseInProduction,
  tlsFilesFrom,
} from "./env.js";
import { httpLimitsEnv, httpLimitsFrom } from "./http-limits.js";
import { type TelemetryConfig, telemetryFrom } from "./telemetry-env.js";

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
  /** The API port's certificate, and the CA of the gateways' client certificates (mutual TLS), when set. */
  readonly tls: TlsFiles | undefined;
  /** API_ADMIN_PORT: /metrics there instead of on the API port. */
  readonly admin: AdminAddress | undefined;
  readonly shutdownGraceMs: number;
  readonly shutdownDrainMs: number;
  /** How often storage is checked while it answers (and 5 times as often while it does not). */
  readonly storageCheckIntervalMs: number;
  /** Honour x-bazbii-fault-* headers (development and tests only). */
  readonly faultInjection: boolean;
  /** ACCESS_LOG and tracing (OTEL_*). */
  readonly telemetry: TelemetryConfig;
}

/** Variables only the API server reads. */
export const apiEnv = {
  API_PORT: port({ default: 8081, desc: "port of the API server (internal: only the gateway calls it)" }),
  API_ADMIN_PORT: port({
    default: undefined,
    desc: "the API server's admin port: /metrics is served there and no longer on API_PORT; /healthz and /readyz on both",
  }),
  API_TLS_CERT_FILE: str({
    default: undefined,
    desc: "PEM certificate of the API port: HTTPS with ALPN h2 and http/1.1; renewed files are picked up as for TLS_CERT_FILE",
  }),
  API_TLS_KEY_FILE: str({ default: undefined, desc: "PEM private key of API_TLS_CERT_FILE" }),
  API_TLS_CLIENT_CA_FILE: str({
    default: undefined,
    desc: "PEM CA of the gateways' client certificates: with it, a client without one signed by it cannot complete the TLS handshake (mutual TLS)",
  }),
  DATA_DIR: str({ default: "./data", desc: "where embedded PGlite keeps its files" }),
  PGLITE_SETTINGS: str({
    choices: ["small", "pglite"] as const,
    default: "small",
    desc: "embedded PGlite's memory against its speed: `small` fits a small machine (README \"Two commands\"), `pglite` is PGlite's own settings: 5–15% more calls/s, for a peak of 1.1–1.2 GB at the first start (bench/README.md)",
  }),
  DATABASE_URL: url({ default: undefined, desc: "PostgreSQL server to use instead of embedded PGlite" }),
  DB_MAX_CONNECTIONS: num({ default: 10, desc: "PostgreSQL pool size" }),
  NATS_URL: url({ default: undefined, desc: "NATS server to publish domain events to (subjects bazbii.events.*)" }),
  NATS_MAX_RECONNECT_ATTEMPTS: num({ default: -1, desc: "reconnect attempts after losing NATS; -1 for ever" }),
  DB_CONNECT_TIMEOUT_MS: num({ default: 5_000, desc: "waiting longer for a connection fails the call as unavailable" }),
  STORAGE_CHECK_INTERVAL_MS: num({
    default: 1_000,
    desc: "how often the API server checks its storage (five times as often while it is down); readyz and grpc.health.v1 say NOT_SERVING from the first check that fails, or the third in a row that takes longer than this (at most 1 s): a busy database is not a down one",
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
      pgliteSettings: env.PGLITE_SETTINGS,
      maxConnections: env.DB_MAX_CONNECTIONS,
      connectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    },
    nats:
      env.NATS_URL === undefined
        ? undefined
        : { url: env.NATS_URL, maxReconnectAttempts: env.NATS_MAX_RECONNECT_ATTEMPTS },
    limits: httpLimitsFrom(env),
    tls: apiTls(env.API_TLS_CERT_FILE, env.API_TLS_KEY_FILE, env.API_TLS_CLIENT_CA_FILE),
    admin: adminAddressFrom(env.ADMIN_HOST, env.API_ADMIN_PORT),
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    shutdownDrainMs: env.SHUTDOWN_DRAIN_MS,
    storageCheckIntervalMs: env.STORAGE_CHECK_INTERVAL_MS,
    faultInjection: env.FAULT_INJECTION,
    telemetry: telemetryFrom(env, "bazbii-api"),
  };
}

function apiTls(
  certFile: string | undefined,
  keyFile: string | undefined,
  clientCaFile: string | undefined,
): TlsFiles | undefined {
  const files = tlsFilesFrom("API_TLS_CERT_FILE", certFile, "API_TLS_KEY_FILE", keyFile);
  if (files === undefined && clientCaFile !== undefined) {
    throw new ConfigError(
      "invalid configuration:\n  API_TLS_CLIENT_CA_FILE: needs API_TLS_CERT_FILE and API_TLS_KEY_FILE",
    );
  }
  return files === undefined ? undefined : { ...files, clientCaFile };
}
