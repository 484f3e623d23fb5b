import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import {
  type MethodRetryPolicy,
  mayRetry,
  retryableCodesOf,
  serviceConfigRetryableCodesOf,
} from "../shared/retry-rules.js";
import { markedNotProcessed, pushbackOf } from "./pushback.js";

const unknown: MethodRetryPolicy = { idempotency: "UNKNOWN", never: false };
const keyed: MethodRetryPolicy = { idempotency: "UNKNOWN", idempotencyKeyField: "requestId", never: false };
const idempotent: MethodRetryPolicy = { idempotency: "IDEMPOTENT", never: false };
const never: MethodRetryPolicy = { idempotency: "NO_SIDE_EFFECTS", never: true };
const plain = { serverGaveDelay: false, notProcessed: false };

describe("the gRPC service config's retryable codes", () => {
  it("leave out a method made safe only by a key that a generic client may not send; our clients retry it", () => {
    expect(serviceConfigRetryableCodesOf(keyed)).toEqual([]);
    expect(retryableCodesOf(keyed)).toEqual([Code.DeadlineExceeded, Code.Aborted, Code.Unavailable]);
    expect(serviceConfigRetryableCodesOf(idempotent)).toEqual(retryableCodesOf(idempotent));
  });
});

describe("the retry decision (code table x idempotency x what the error says)", () => {
  it("retries a method of unknown idempotency only when the request provably was not processed", () => {
    expect(mayRetry(unknown, Code.Unavailable, plain)).toBe(false);
    expect(mayRetry(unknown, Code.Unavailable, { ...plain, notProcessed: true })).toBe(true);
    expect(mayRetry(unknown, Code.Aborted, plain)).toBe(false);
    expect(mayRetry(unknown, Code.DeadlineExceeded, plain)).toBe(false);
  });

  it("retries idempotent and keyed methods on unavailable, aborted and deadline_exceeded", () => {
    for (const policy of [idempotent, keyed]) {
      for (const code of [Code.Unavailable, Code.Aborted, Code.DeadlineExceeded])
        expect(mayRetry(policy, code, plain)).toBe(true);
    }
  });

  it("retries resource_exhausted only with a delay from the server, for any method", () => {
    expect(mayRetry(unknown, Code.ResourceExhausted, plain)).toBe(false);
    expect(mayRetry(unknown, Code.ResourceExhausted, { ...plain, serverGaveDelay: true })).toBe(true);
  });

  it("never retries invalid_argument, unauthenticated, permission_denied or internal, nor a method marked never", () => {
    for (const code of [Code.InvalidArgument, Code.Unauthenticated, Code.PermissionDenied, Code.Internal]) {
      expect(mayRetry(idempotent, code, { serverGaveDelay: true, notProcessed: true })).toBe(false);
    }
    expect(mayRetry(never, Code.Unavailable, { serverGaveDelay: true, notProcessed: true })).toBe(false);
  });
});

describe("pushback", () => {
  it("prefers grpc-retry-pushback-ms, where a negative value means do not retry", () => {
    const err = new ConnectError("x", Code.Unavailable, { "grpc-retry-pushback-ms": "250", "retry-after": "9" });
    expect(pushbackOf(err)).toEqual({ kind: "after", ms: 250, source: "grpc-retry-pushback-ms" });
    expect(pushbackOf(new ConnectError("x", Code.Unavailable, { "grpc-retry-pushback-ms": "-1" }))).toEqual({
      kind: "stop",
      source: "grpc-retry-pushback-ms",
    });
  });

  it("then RetryInfo, then a proxy's Retry-After in seconds or as a date", () => {
    const withRetryInfo = new ConnectError("x", Code.Unavailable, { "retry-after": "9" }, [
      { desc: RetryInfoSchema, value: { retryDelay: { seconds: 1n, nanos: 500_000_000 } } },
    ]);
    expect(pushbackOf(withRetryInfo)).toEqual({ kind: "after", ms: 1500, source: "RetryInfo" });
    expect(pushbackOf(new ConnectError("HTTP 503", Code.Unavailable, { "retry-after": "3" }))).toEqual({
      kind: "after",
      ms: 3000,
      source: "Retry-After",
    });
    const now = Date.parse("2026-11-22T00:00:00Z");
    const dated = new ConnectError("HTTP 429", Code.Unavailable, { "retry-after": "Sun, 22 Nov 2026 00:00:05 GMT" });
    expect(pushbackOf(dated, now)).toEqual({ kind: "after", ms: 5000, source: "Retry-After" });
    expect(pushbackOf(new ConnectError("x", Code.Unavailable))).toBeUndefined();
  });

  it("reads the server's not-processed mark from ErrorInfo", () => {
    const marked = new ConnectError("x", Code.Unavailable, undefined, [
      {
        desc: ErrorInfoSchema,
        value: { reason: "RATE_LIMITED", domain: "bazbii.dev", metadata: { processed: "false" } },
      },
    ]);
    expect(markedNotProcessed(marked)).toBe(true);
    expect(markedNotProcessed(new ConnectError("x", Code.Unavailable))).toBe(false);
  });
});
