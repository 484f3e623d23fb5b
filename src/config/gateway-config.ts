import { bool, makeValidator, num, port, str, url } from "envalid";
import proxyaddr from "proxy-addr";
import type { TokenConfig } from "../gateway/auth.js";
import type { RateLimitConfig } from "../gateway/rate-limit.js";
import type { StreamLimits } from "../gateway/request-gate.js";
import type { PoolConfig, UpstreamProtocol } from "../gateway/upstream/endpoint-pool.js";
import type { UpstreamConfig } from "../gateway/upstream/upstream.js";
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

/**
 * Development default for AUTH_JWT_SECRET, so `npm start` works on a fresh
 * checkout. The gateway refuses to start with it when NODE_ENV=production.
 */
export const DEVELOPMENT_JWT_SECRET = "bazbii-development-secret-not-for-production";

export interface GatewayConfig {
  readonly env: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  /** INTERNAL_AUTH_SECRET: signs (gateway) and checks (API server) the per-call assertion. */
  readonly internalAuthSecret: string;
  /** The upstream's settings; its connections' idle time is IDLE_TIMEOUT_MS's (limits). */
  readonly upstream: Omit<UpstreamConfig, "pool"> & { readonly pool: Omit<PoolConfig, "idleTimeoutMs"> };
  /** AUTH_JWT_SECRET: the development tokens' secret (npm run token, POST /dev/token). */
  readonly jwtSecret: string;
  /** Which bearer tokens are accepted. */
  readonly tokens: TokenConfig;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly limits: HttpLimits;
  /** The public port's certificate (HTTPS) when set; cleartext h2c and HTTP/1.1 otherwise. */
  readonly tls: TlsFiles | undefined;
  /** ADMIN_PORT: /metrics there instead of on the public port. */
  readonly admin: AdminAddress | undefined;
  /** TRUSTED_PROXIES: the proxies whose X-Forwarded-For and Forwarded are believed. */
  readonly trustedProxies: readonly string[];
  readonly rateLimit: RateLimitConfig;
  readonly maxInFlight: number;
  /** MAX_STREAMS and MAX_STREAMS_PER_CALLER. */
  readonly streamLimits: StreamLimits;
  /** MAX_STREAM_DURATION_MS. */
  readonly maxStreamDurationMs: number;
  readonly corsAllowedOrigins: readonly string[];
  readonly webRoot: string;
  /** Who gets development tokens at POST /dev/token: nobody, loopback peers only, or anyone (DEV_TOKENS=true). */
  readonly devTokens: DevTokens;
  readonly shutdownGraceMs: number;
  readonly shutdownDrainMs: number;
  /** Honour x-bazbii-fault-* headers (development and tests only). */
  readonly faultInjection: boolean;
  /** ACCESS_LOG and tracing (OTEL_*). */
  readonly telemetry: TelemetryConfig;
}

/** A comma-separated list of http(s) URLs. */
const urlList = makeValidator<string[]>((raw) => {
  const urls = raw
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
  if (urls.length === 0) throw new Error("expected one or more URLs, comma-separated");
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`not a URL: ${u}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error(`not an http(s) URL: ${u}`);
  }
  return urls;
});

/** Variables only the gateway reads. */
export const gatewayEnv = {
  GATEWAY_PORT: port({ default: 8080, desc: "public port: Connect, gRPC and gRPC-Web, HTTP/1.1 and h2c" }),
  API_URL: urlList({
    default: ["http://127.0.0.1:8081"],
    desc: "the API servers (HTTP/1.1 and h2c), comma-separated; a host name is one endpoint per address it resolves to",
  }),
  UPSTREAM_RESOLVE_INTERVAL_MS: num({
    default: 5_000,
    desc: "how often API_URL's host names are resolved again: new addresses join, gone ones are drained",
  }),
  UPSTREAM_HEALTH_INTERVAL_MS: num({
    default: 500,
    desc: "each endpoint's grpc.health.v1 Watch is opened again this often while the endpoint cannot be reached; 0 turns active health checks off",
  }),
  UPSTREAM_EJECTION_FAILURES: num({
    default: 3,
    desc: "consecutive failures (refused, lost or unavailable) that eject an endpoint (outlier detection)",
  }),
  UPSTREAM_EJECTION_BASE_MS: num({
    default: 200,
    desc: "an ejected endpoint is probed every this × the times it was ejected, and returns as soon as a probe answers",
  }),
  UPSTREAM_EJECTION_MAX_MS: num({ default: 30_000, desc: "longest interval between probes of an ejected endpoint" }),
  UPSTREAM_MAX_EJECTION_PERCENT: num({
    default: 50,
    desc: "endpoints ejected at once at most, in percent of all (at least one)",
  }),
  UPSTREAM_RETRY_BUDGET_PERCENT: num({
    default: 20,
    desc: "the gateway's own retries in flight at most, in percent of the calls in flight (at least 3)",
  }),
  TLS_CERT_FILE: str({
    default: undefined,
    desc: "PEM certificate (with its chain) of the public port: HTTPS with ALPN h2 and http/1.1, TLS 1.2 at least; a renewed file is picked up within a second (or on SIGHUP), open connections kept",
  }),
  TLS_KEY_FILE: str({ default: undefined, desc: "PEM private key of TLS_CERT_FILE" }),
  API_CA_FILE: str({
    default: undefined,
    desc: "PEM CA the API servers' certificates are checked against, for an https API_URL (the system's CAs otherwise)",
  }),
  GATEWAY_CLIENT_CERT_FILE: str({
    default: undefined,
    desc: "PEM client certificate the gateway presents to the API servers (mutual TLS)",
  }),
  GATEWAY_CLIENT_KEY_FILE: str({ default: undefined, desc: "PEM private key of GATEWAY_CLIENT_CERT_FILE" }),
  UPSTREAM_PROTOCOL: str({
    choices: ["connect", "grpc"],
    default: "connect",
    desc: "protocol of the upstream calls the gateway decodes itself (GetHeatmap, Connect GET); every other call goes on in the caller's own protocol, as its bytes",
  }),
  UPSTREAM_MAX_CONNECTIONS: num({
    default: 32,
    desc: "HTTP/1.1 connections to each API server endpoint at most (relayed Connect and gRPC-Web calls, one at a time each); more calls wait for a free one within their deadlines. gRPC shares one h2c connection per endpoint",
  }),
  AUTH_JWT_SECRET: str({
    default: DEVELOPMENT_JWT_SECRET,
    desc: "HS256 secret of bearer tokens; the development default is refused when NODE_ENV=production",
  }),
  JWT_JWKS_URL: url({
    default: undefined,
    desc: "an identity provider's JWKS: bearer tokens signed by its keys are accepted (and HS256 ones no longer); keys are cached, refetched when an unknown kid arrives (at most every 30 s), and kept working while the provider is down",
  }),
  JWT_ISSUER: str({ default: undefined, desc: "iss every bearer token must have; required with JWT_JWKS_URL" }),
  JWT_AUDIENCE: str({ default: undefined, desc: "aud every bearer token must have; required with JWT_JWKS_URL" }),
  JWT_CLOCK_SKEW_S: num({ default: 30, desc: "leeway for a token's exp and nbf, in seconds" }),
  JWT_ALGORITHMS: str({
    default: "RS256,ES256,EdDSA",
    desc: "algorithms accepted from the JWKS, comma-separated: asymmetric ones only (none and HMAC are refused)",
  }),
  DEFAULT_TIMEOUT_MS: num({ default: 10_000, desc: "deadline of upstream calls whose caller set none" }),
  MAX_TIMEOUT_MS: num({ default: 30_000, desc: "longest deadline granted, whatever the caller asks" }),
  REDIS_URL: url({
    default: undefined,
    desc: "Redis for rate-limit counters shared by gateway replicas; in memory when unset",
  }),
  RATE_LIMIT_REDIS_PREFIX: str({
    default: "bazbii:ratelimit",
    desc: "Redis key prefix; replicas with the same prefix share limits",
  }),
  RATE_LIMIT_WINDOW_SECONDS: num({ default: 60, desc: "length of a rate-limit window" }),
  RATE_LIMIT_READS: num({ default: 600, desc: "calls per window and caller to NO_SIDE_EFFECTS methods" }),
  RATE_LIMIT_WRITES: num({ default: 120, desc: "calls per window and caller to other methods" }),
  MAX_IN_FLIGHT: num({
    default: 1_000,
    desc: "unary calls in flight at once; more are shed with unavailable + RetryInfo",
  }),
  MAX_STREAMS: num({
    default: 10_000,
    desc: "server streams open at once, counted apart from unary calls; more are refused with resource_exhausted + RetryInfo",
  }),
  MAX_STREAMS_PER_CALLER: num({
    default: 20,
    desc: "server streams open at once per actor (per client address for anonymous callers); more are refused with resource_exhausted + RetryInfo",
  }),
  MAX_STREAM_DURATION_MS: num({
    default: 1_800_000,
    desc: "a server stream open this long is ended with unavailable (STREAM_DURATION_REACHED) and RetryInfo; the client library watches again",
  }),
  WEB_ROOT: str({ default: "dist/web", desc: "directory of the built browser page served at /" }),
  DEV_TOKENS: bool({
    default: undefined,
    desc: "hand out development tokens at POST /dev/token to any peer; unset means to loopback peers only, unless NODE_ENV=production (never there: true is refused)",
  }),
  TRUSTED_PROXIES: str({
    default: "",
    desc: "comma-separated addresses or CIDRs (or loopback, linklocal, uniquelocal) of proxies in front of the gateway: X-Forwarded-For and Forwarded are believed from them only, to find the client address rate limits key on",
  }),
  ADMIN_PORT: port({
    default: undefined,
    desc: "the gateway's admin port: /metrics is served there and no longer on the public port; /healthz and /readyz on both",
  }),
  CORS_ALLOWED_ORIGINS: str({ default: "", desc: "comma-separated browser origins allowed to call cross-origin" }),
};

/** The gateway's configuration, read from the environment once at start-up. */
export function gatewayConfigFromEnv(source: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const env = readEnv(source, { ...commonEnv, ...httpLimitsEnv, ...gatewayEnv });
  refuseInProduction(env);
  if (env.NODE_ENV === "production" && env.DEV_TOKENS === true) {
    throw new ConfigError("invalid configuration:\n  DEV_TOKENS: must not be enabled when NODE_ENV=production");
  }
  const trustedProxies = trustedProxiesFrom(env.TRUSTED_PROXIES);
  const devTokens: DevTokens =
    env.NODE_ENV === "production" || env.DEV_TOKENS === false ? "off" : env.DEV_TOKENS ? "anyone" : "loopback";
  const algorithms = env.JWT_ALGORITHMS.split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const symmetric = algorithms.filter((a) => a === "none" || /^HS\d+$/.test(a));
  if (symmetric.length > 0) {
    throw new ConfigError(
      `invalid configuration:\n  JWT_ALGORITHMS: ${symmetric.join(", ")} cannot verify a provider's tokens (only asymmetric algorithms)`,
    );
  }
  if (env.JWT_JWKS_URL !== undefined && (env.JWT_ISSUER === undefined || env.JWT_AUDIENCE === undefined)) {
    throw new ConfigError(
      "invalid configuration:\n  JWT_ISSUER, JWT_AUDIENCE: both are required with JWT_JWKS_URL (a token for another service must not do)",
    );
  }
  if (
    env.NODE_ENV === "production" &&
    env.JWT_JWKS_URL === undefined &&
    env.AUTH_JWT_SECRET === DEVELOPMENT_JWT_SECRET
  ) {
    throw new ConfigError(
      "invalid configuration:\n  AUTH_JWT_SECRET: the development default must not be used in production; set a secret of at least 32 bytes",
    );
  }
  if (env.NODE_ENV === "production" && env.JWT_JWKS_URL === undefined && Buffer.byteLength(env.AUTH_JWT_SECRET) < 32) {
    throw new ConfigError("invalid configuration:\n  AUTH_JWT_SECRET: must be at least 32 bytes (256 bits) for HS256");
  }
  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.GATEWAY_PORT,
    logLevel: env.LOG_LEVEL,
    internalAuthSecret: env.INTERNAL_AUTH_SECRET,
    upstream: {
      urls: env.API_URL,
      resolveIntervalMs: env.UPSTREAM_RESOLVE_INTERVAL_MS,
      healthIntervalMs: env.UPSTREAM_HEALTH_INTERVAL_MS,
      pool: {
        protocol: env.UPSTREAM_PROTOCOL as UpstreamProtocol,
        maxConnections: env.UPSTREAM_MAX_CONNECTIONS,
        tls: {
          caFile: env.API_CA_FILE,
          ...tlsFilesFrom(
            "GATEWAY_CLIENT_CERT_FILE",
            env.GATEWAY_CLIENT_CERT_FILE,
            "GATEWAY_CLIENT_KEY_FILE",
            env.GATEWAY_CLIENT_KEY_FILE,
          ),
        },
      },
      outliers: {
        consecutiveFailures: env.UPSTREAM_EJECTION_FAILURES,
        baseEjectionMs: env.UPSTREAM_EJECTION_BASE_MS,
        maxEjectionMs: env.UPSTREAM_EJECTION_MAX_MS,
        maxEjectionPercent: env.UPSTREAM_MAX_EJECTION_PERCENT,
      },
      retryBudgetPercent: env.UPSTREAM_RETRY_BUDGET_PERCENT,
    },
    jwtSecret: env.AUTH_JWT_SECRET,
    tokens: {
      hs256Secret: env.AUTH_JWT_SECRET,
      jwksUrl: env.JWT_JWKS_URL,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      clockSkewSeconds: env.JWT_CLOCK_SKEW_S,
      algorithms,
    },
    defaultTimeoutMs: env.DEFAULT_TIMEOUT_MS,
    maxTimeoutMs: env.MAX_TIMEOUT_MS,
    limits: httpLimitsFrom(env),
    tls: tlsFilesFrom("TLS_CERT_FILE", env.TLS_CERT_FILE, "TLS_KEY_FILE", env.TLS_KEY_FILE),
    admin: adminAddressFrom(env.ADMIN_HOST, env.ADMIN_PORT),
    trustedProxies,
    rateLimit: {
      windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS,
      reads: env.RATE_LIMIT_READS,
      writes: env.RATE_LIMIT_WRITES,
      redisUrl: env.REDIS_URL,
      redisKeyPrefix: env.RATE_LIMIT_REDIS_PREFIX,
    },
    maxInFlight: env.MAX_IN_FLIGHT,
    streamLimits: { maxStreams: env.MAX_STREAMS, maxStreamsPerCaller: env.MAX_STREAMS_PER_CALLER },
    maxStreamDurationMs: env.MAX_STREAM_DURATION_MS,
    corsAllowedOrigins: env.CORS_ALLOWED_ORIGINS.split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    webRoot: env.WEB_ROOT,
    devTokens,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    shutdownDrainMs: env.SHUTDOWN_DRAIN_MS,
    faultInjection: env.FAULT_INJECTION,
    telemetry: telemetryFrom(env, "bazbii-gateway"),
  };
}

/** Who gets development tokens at POST /dev/token. */
export type DevTokens = "off" | "loopback" | "anyone";

/** TRUSTED_PROXIES, each entry checked now rather than at the first call. */
function trustedProxiesFrom(value: string): string[] {
  const entries = value
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const entry of entries) {
    try {
      proxyaddr.compile(entry);
    } catch {
      throw new ConfigError(
        `invalid configuration:\n  TRUSTED_PROXIES: "${entry}" is not an address, a CIDR, loopback, linklocal or uniquelocal`,
      );
    }
  }
  return entries;
}
