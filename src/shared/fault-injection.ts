import { setTimeout as sleep } from "node:timers/promises";
import type { Code, Interceptor } from "@connectrpc/connect";
import { codeFromName, codeTable } from "./code-table.js";
import { errorCatalog } from "./errors/catalog.js";
import { publicError } from "./errors/public-error.js";
import { type RequestContext, requestContextOf } from "./request-context.js";

/**
 * Request headers that ask for a fault (like Envoy's fault filter), so client
 * developers can try their retry and error handling against the real system.
 * Honoured only where FAULT_INJECTION=true, which production refuses.
 */
export const FAULT_HEADERS = {
  /** Canonical code to fail with: `unavailable` or `14`. */
  abort: "x-bazbii-fault-abort",
  /** Percentage of calls to fail, 0..100 (default 100). */
  abortPercent: "x-bazbii-fault-abort-percent",
  /** Fail only attempts before this one: `2` fails the first two (counted by grpc-previous-rpc-attempts). */
  abortAttempts: "x-bazbii-fault-abort-attempts",
  /** RetryInfo delay (and retry-after / grpc-retry-pushback-ms) to attach to the failure, in ms. */
  retryDelayMs: "x-bazbii-fault-retry-delay-ms",
  /** Delay before the call is processed, in ms. */
  delayMs: "x-bazbii-fault-delay-ms",
  /**
   * Where the fault applies: `api` (default), `gateway` (before the upstream
   * call), or `gateway-response` (after it: the work is done, the answer is lost).
   */
  at: "x-bazbii-fault-at",
  /** For a server stream: fail only after this many messages were sent (an error mid-stream). */
  abortAfterMessages: "x-bazbii-fault-abort-after-messages",
} as const;

export const FAULT_HEADER_NAMES: readonly string[] = Object.values(FAULT_HEADERS);

/** Longest injected delay: a fault must not hold a connection for ever. */
const MAX_DELAY_MS = 60_000;

function invalid(rc: RequestContext, header: string, problem: string): Error {
  return publicError(errorCatalog.FAULT_HEADER_INVALID, rc, { params: { header, problem } });
}

function integerHeader(headers: Headers, name: string, max: number, rc: RequestContext): number | undefined {
  const raw = headers.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > max) throw invalid(rc, name, `expected an integer 0..${max}`);
  return value;
}

/**
 * Applies the fault the headers ask for, if any, at `where`: waits for the
 * delay, then throws the requested error (a FAULT_INJECTED public error with
 * the requested code).
 */
export async function applyFault(
  headers: Headers,
  where: "api" | "gateway" | "gateway-response",
  rc: RequestContext,
  signal: AbortSignal,
): Promise<void> {
  if ((headers.get(FAULT_HEADERS.at) ?? "api") !== where) return;
  const delayMs = integerHeader(headers, FAULT_HEADERS.delayMs, MAX_DELAY_MS, rc);
  const abort = headers.get(FAULT_HEADERS.abort);
  let code: Code | undefined;
  if (abort !== null) {
    code = codeFromName(abort) ?? (codeTable[Number(abort) as Code] ? (Number(abort) as Code) : undefined);
    if (code === undefined)
      throw invalid(rc, FAULT_HEADERS.abort, "expected a canonical code such as unavailable or 14");
  }
  const percent = integerHeader(headers, FAULT_HEADERS.abortPercent, 100, rc) ?? 100;
  const attempts = integerHeader(headers, FAULT_HEADERS.abortAttempts, 1000, rc);
  const retryDelayMs = integerHeader(headers, FAULT_HEADERS.retryDelayMs, MAX_DELAY_MS, rc);
  const attempt = Number(headers.get("grpc-previous-rpc-attempts") ?? 0) || 0;

  if (delayMs !== undefined && delayMs > 0) await sleep(delayMs, undefined, { signal });
  if (code === undefined || Math.random() * 100 >= percent) return;
  if (attempts !== undefined && attempt >= attempts) return;
  const retryHeaders =
    retryDelayMs === undefined
      ? undefined
      : { "retry-after": String(Math.ceil(retryDelayMs / 1000)), "grpc-retry-pushback-ms": String(retryDelayMs) };
  throw publicError({ ...errorCatalog.FAULT_INJECTED, code }, rc, {
    params: { code: codeTable[code].name },
    ...(retryDelayMs === undefined ? {} : { retryDelayMs }),
    ...(retryHeaders === undefined ? {} : { headers: retryHeaders }),
  });
}

/** The API server's fault injection, inside the error boundary so faults are logged like real failures. */
export function createFaultInterceptor(): Interceptor {
  return (next) => async (req) => {
    const rc = requestContextOf(req.contextValues);
    const afterMessages = integerHeader(req.header, FAULT_HEADERS.abortAfterMessages, 1000, rc);
    if (afterMessages === undefined) {
      await applyFault(req.header, "api", rc, req.signal);
      return next(req);
    }
    const res = await next(req);
    if (!res.stream) {
      await applyFault(req.header, "api", rc, req.signal);
      return res;
    }
    const messages = res.message as AsyncIterable<unknown>;
    async function* failingMidStream(): AsyncGenerator<unknown> {
      let sent = 0;
      if (afterMessages === 0) await applyFault(req.header, "api", rc, req.signal);
      for await (const message of messages) {
        yield message;
        // Once that many were taken: the next one is not waited for.
        if (++sent === afterMessages) await applyFault(req.header, "api", rc, req.signal);
      }
    }
    return { ...res, message: failingMidStream() } as typeof res;
  };
}
