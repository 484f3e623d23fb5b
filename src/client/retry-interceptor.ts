import { Code, ConnectError, type Interceptor, type UnaryRequest } from "@connectrpc/connect";
import { codeTable } from "../shared/code-table.js";
import { retryPolicies, UNKNOWN_METHOD_POLICY } from "../shared/retry-policies.js";
import { type MethodRetryPolicy, mayRetry, RETRY_DEFAULTS } from "../shared/retry-rules.js";
import { markedNotProcessed, type Pushback, pushbackOf, refusedBeforeSending } from "./pushback.js";
import { RetryThrottle } from "./retry-throttle.js";

export interface RetryEvent {
  /** "<service>/<method>" */
  readonly method: string;
  /** The attempt that failed, 1-based. */
  readonly attempt: number;
  readonly error: ConnectError;
  /** How long the client waits before the next attempt. */
  readonly delayMs: number;
  /** Where the delay came from. */
  readonly delaySource: "backoff" | Pushback["source"];
}

export type GiveUpReason =
  | "not-retryable"
  | "attempts-exhausted"
  | "throttled"
  | "server-said-stop"
  | "deadline"
  | "canceled";

export interface GiveUpEvent {
  readonly method: string;
  readonly attempts: number;
  readonly error: ConnectError;
  readonly reason: GiveUpReason;
}

export interface RetryOptions {
  /** Policies by "<service>/<method>"; the generated ones by default. */
  readonly policies?: Readonly<Record<string, MethodRetryPolicy>>;
  readonly maxAttempts?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly backoffMultiplier?: number;
  /** ±fraction of jitter on each backoff (0.2: ±20%). */
  readonly jitter?: number;
  /** Each attempt may take at most this long (the overall deadline still applies); a timed-out attempt is deadline_exceeded and may be retried. */
  readonly perAttemptTimeoutMs?: number;
  /** No attempt is started with less time than this left before the deadline. */
  readonly minAttemptMs?: number;
  /** Shared by every client of one upstream; one per interceptor by default. */
  readonly throttle?: RetryThrottle;
  /** Uniform random numbers in [0, 1), for the jitter. */
  readonly random?: () => number;
  readonly onRetry?: (event: RetryEvent) => void;
  readonly onGiveUp?: (event: GiveUpEvent) => void;
}

const PREVIOUS_ATTEMPTS = "grpc-previous-rpc-attempts";
const CONNECT_TIMEOUT = "connect-timeout-ms";
const GRPC_TIMEOUT = "grpc-timeout";
const GRPC_TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** The deadline the transport put in the request headers, as a Date.now() instant. */
function deadlineOf(header: Headers, now: number): number | undefined {
  const connect = header.get(CONNECT_TIMEOUT);
  if (connect !== null) return now + Number(connect);
  const grpc = header.get(GRPC_TIMEOUT);
  const match = grpc === null ? null : /^(\d{1,8})([HMSmun])$/.exec(grpc);
  return match ? now + Number(match[1]) * (GRPC_TIMEOUT_UNITS[match[2] as string] ?? 1) : undefined;
}

function setRemaining(header: Headers, ms: number): void {
  const whole = Math.max(1, Math.floor(ms));
  if (header.has(CONNECT_TIMEOUT)) header.set(CONNECT_TIMEOUT, String(whole));
  if (header.has(GRPC_TIMEOUT)) header.set(GRPC_TIMEOUT, `${whole}m`);
}

/** A sleep that ends early, with the signal's reason, when the call is canceled or its deadline passes. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Retries unary calls as the schema and the code table allow (see
 * shared/retry-rules.ts): idempotent methods on unavailable, aborted and
 * per-attempt deadline_exceeded; any method when the server marked the request
 * as not processed, or refused it with RetryInfo; never invalid_argument,
 * unauthenticated, permission_denied or internal. Backs off exponentially with
 * jitter, honours server pushback, keeps one deadline across attempts,
 * throttles like gRFC A6, and sends the same idempotency key on every attempt.
 */
export function createRetryInterceptor(options: RetryOptions = {}): Interceptor {
  const policies = options.policies ?? retryPolicies;
  const maxAttempts = options.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  const initialBackoffMs = options.initialBackoffMs ?? RETRY_DEFAULTS.initialBackoffMs;
  const maxBackoffMs = options.maxBackoffMs ?? RETRY_DEFAULTS.maxBackoffMs;
  const multiplier = options.backoffMultiplier ?? RETRY_DEFAULTS.backoffMultiplier;
  const jitter = options.jitter ?? RETRY_DEFAULTS.jitter;
  const minAttemptMs = options.minAttemptMs ?? 10;
  const throttle = options.throttle ?? new RetryThrottle();
  const random = options.random ?? Math.random;

  const backoff = (retry: number): number => {
    const base = Math.min(initialBackoffMs * multiplier ** (retry - 1), maxBackoffMs);
    return base * (1 + jitter * (2 * random() - 1));
  };

  return (next) => async (req) => {
    if (req.stream) return next(req);
    const name = `${req.service.typeName}/${req.method.name}`;
    const policy = policies[name] ?? UNKNOWN_METHOD_POLICY;
    const keyField = policy.idempotencyKeyField;
    if (keyField !== undefined) {
      // Exactly once: the same key on every attempt, made up when the caller sent none.
      const message = req.message as unknown as Record<string, unknown>;
      if (message[keyField] === "" || message[keyField] === undefined) message[keyField] = crypto.randomUUID();
    }
    const deadline = deadlineOf(req.header, Date.now());
    const giveUp = (attempts: number, error: ConnectError, reason: GiveUpReason): ConnectError => {
      options.onGiveUp?.({ method: name, attempts, error, reason });
      return error;
    };
    /** The caller canceled, or the one deadline of all attempts passed: that is the answer. */
    const endedByCaller = (attempts: number): ConnectError => {
      const error = ConnectError.from(req.signal.reason);
      return giveUp(attempts, error, error.code === Code.DeadlineExceeded ? "deadline" : "canceled");
    };

    for (let attempt = 1; ; attempt++) {
      const header = new Headers(req.header);
      if (attempt > 1) header.set(PREVIOUS_ATTEMPTS, String(attempt - 1));
      let budget = deadline === undefined ? undefined : deadline - Date.now();
      if (options.perAttemptTimeoutMs !== undefined) budget = Math.min(budget ?? Infinity, options.perAttemptTimeoutMs);
      if (budget !== undefined) setRemaining(header, budget);
      const signal =
        options.perAttemptTimeoutMs !== undefined && budget !== undefined
          ? AbortSignal.any([req.signal, AbortSignal.timeout(budget)])
          : req.signal;
      const attemptReq: UnaryRequest = { ...req, header, signal };
      let error: ConnectError;
      try {
        const res = await next(attemptReq);
        throttle.recordSuccess();
        return res;
      } catch (thrown) {
        error = ConnectError.from(thrown);
        // An attempt cut by its own per-attempt timeout is deadline_exceeded, whatever the transport said.
        if (!req.signal.aborted && attemptReq.signal !== req.signal && attemptReq.signal.aborted) {
          error = new ConnectError(error.rawMessage, Code.DeadlineExceeded, error.metadata, undefined, error);
        }
      }
      if (req.signal.aborted) throw endedByCaller(attempt);

      const pushback = pushbackOf(error);
      const refused = refusedBeforeSending(error);
      // Whatever code the transport gave a refusal, it says "not processed, try again".
      if (refused && error.code !== Code.Unavailable) {
        error = new ConnectError(error.rawMessage, Code.Unavailable, error.metadata, undefined, error);
      }
      const facts = {
        serverGaveDelay: pushback?.kind === "after",
        notProcessed: markedNotProcessed(error) || refused,
      };
      const retryableClass = codeTable[error.code].retryClass !== "never";
      if (retryableClass) throttle.recordFailure();
      if (!mayRetry(policy, error.code, facts)) throw giveUp(attempt, error, "not-retryable");
      if (pushback?.kind === "stop") throw giveUp(attempt, error, "server-said-stop");
      if (attempt >= maxAttempts) throw giveUp(attempt, error, "attempts-exhausted");
      if (!throttle.allowsRetry()) throw giveUp(attempt, error, "throttled");

      const delayMs = pushback?.kind === "after" ? pushback.ms : backoff(attempt);
      if (deadline !== undefined && Date.now() + delayMs + minAttemptMs > deadline) {
        throw giveUp(attempt, error, "deadline");
      }
      options.onRetry?.({
        method: name,
        attempt,
        error,
        delayMs,
        delaySource: pushback?.kind === "after" ? pushback.source : "backoff",
      });
      try {
        await sleep(delayMs, req.signal);
      } catch {
        throw endedByCaller(attempt);
      }
    }
  };
}
