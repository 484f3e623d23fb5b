import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import type { ProtectionMetrics } from "../shared/metrics/protection-metrics.js";
import type { RequestContext } from "../shared/request-context.js";

export interface RateLimitConfig {
  readonly windowSeconds: number;
  /** Calls per window and caller to methods without side effects (the schema's NO_SIDE_EFFECTS). */
  readonly reads: number;
  /** Calls per window and caller to every other method. */
  readonly writes: number;
  /** Redis shared by the gateway's replicas; in-memory counters when absent. */
  readonly redisUrl: string | undefined;
  /** Key prefix in Redis: replicas with the same prefix share their limits. */
  readonly redisKeyPrefix: string;
}

export interface RateLimiter {
  /** Counts one call of `method` by `subject`; throws RATE_LIMITED when over the limit. */
  consume(method: DescMethod, subject: string, rc: RequestContext): Promise<void>;
  close(): Promise<void>;
}

type LimitClass = "reads" | "writes";

/** How long start-up waits for Redis before it begins on in-memory counters. */
const STARTUP_WAIT_MS = 2_000;

function classOf(method: DescMethod): LimitClass {
  return method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ? "reads" : "writes";
}

/**
 * Per-caller limits (the actor, or the client address for anonymous calls), per
 * method class. With Redis the replicas share counters; when Redis cannot be
 * reached each replica falls back to its own in-memory counters (logged once
 * per outage under GW_001) rather than failing calls.
 */
export async function createRateLimiter(
  config: RateLimitConfig,
  log: Logger,
  metrics: ProtectionMetrics,
): Promise<RateLimiter> {
  const points: Record<LimitClass, number> = { reads: config.reads, writes: config.writes };
  // ioredis is loaded only when Redis is configured: a gateway on in-memory limits
  // does not carry it (5–9 MB of resident memory at start-up, measured).
  const redis =
    config.redisUrl === undefined
      ? undefined
      : new (await import("ioredis")).Redis(config.redisUrl, {
          // Fail at once while disconnected, so the in-memory fallback answers instead of a queue.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: 1000,
          retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
        });
  let closing = false;
  if (redis !== undefined) {
    let down = false;
    const lost = (err?: Error): void => {
      if (down || closing) return;
      down = true;
      logmsg.RateLimitStoreDown.emit(log, err === undefined ? {} : { err });
    };
    redis.on("error", lost);
    redis.on("close", () => lost());
    redis.on("ready", () => {
      if (!down) return;
      down = false;
      logmsg.RateLimitStoreUp.emit(log);
    });
    // Start on shared counters when Redis answers soon; otherwise start on
    // in-memory ones (logged) and switch over when it comes.
    const ready = await Promise.race([
      once(redis, "ready").then(() => true),
      sleep(STARTUP_WAIT_MS, false, { ref: false }),
    ]);
    if (!ready) lost();
  }
  const limiters = Object.fromEntries(
    (["reads", "writes"] as const).map((cls) => {
      const opts = {
        points: points[cls],
        duration: config.windowSeconds,
        keyPrefix: `${config.redisKeyPrefix}:${cls}`,
      };
      const memory = new RateLimiterMemory(opts);
      const limiter =
        redis === undefined ? memory : new RateLimiterRedis({ ...opts, storeClient: redis, insuranceLimiter: memory });
      return [cls, limiter];
    }),
  ) as Record<LimitClass, RateLimiterMemory | RateLimiterRedis>;

  return {
    async consume(method, subject, rc) {
      const cls = classOf(method);
      try {
        await limiters[cls].consume(subject);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        metrics.rateLimited(method.parent.typeName, method.name, cls);
        const retryDelayMs = Math.max(1, rejection.msBeforeNext);
        throw publicError(errorCatalog.RATE_LIMITED, rc, {
          params: { limit: cls, subject, max: String(points[cls]), windowSeconds: String(config.windowSeconds) },
          retryDelayMs,
          // Retry-After for HTTP clients and proxies, grpc-retry-pushback-ms for gRPC clients (gRFC A6).
          headers: {
            "retry-after": String(Math.ceil(retryDelayMs / 1000)),
            "grpc-retry-pushback-ms": String(retryDelayMs),
          },
        });
      }
    },
    async close() {
      closing = true;
      redis?.disconnect();
    },
  };
}
