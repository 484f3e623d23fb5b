import { Code } from "@connectrpc/connect";

/** Who caused an error: the caller (4xx) or the server side (5xx). */
export type ErrorClass = "client" | "server";

/**
 * When a call that failed with a code may be tried again:
 * - `never`: the same request fails the same way;
 * - `idempotent`: only methods whose schema says NO_SIDE_EFFECTS or IDEMPOTENT;
 * - `after_delay`: any method, but only when the error carries RetryInfo, after its delay;
 * - `unavailable`: idempotent methods always; others only when the request provably
 *   was not processed (refused before sending, or rejected by the gateway before any
 *   upstream call).
 */
export type RetryClass = "never" | "idempotent" | "after_delay" | "unavailable";

export type LogLevel = "info" | "warn" | "error";

export interface CodeSpec {
  /** The Connect protocol's string form, e.g. `invalid_argument`. */
  readonly name: string;
  /** HTTP status of a Connect unary error with this code. */
  readonly httpStatus: number;
  readonly errorClass: ErrorClass;
  readonly retryClass: RetryClass;
  readonly logLevel: LogLevel;
}

function spec(
  name: string,
  httpStatus: number,
  errorClass: ErrorClass,
  retryClass: RetryClass,
  logLevel: LogLevel,
): CodeSpec {
  return { name, httpStatus, errorClass, retryClass, logLevel };
}

/**
 * THE code table (ERROR-MODEL.md). HTTP statuses, retry decisions, log levels
 * and the error catalog in docs/ are all derived from it; nothing else in the
 * code base restates these facts.
 */
export const codeTable: { readonly [C in Code]: CodeSpec } = {
  [Code.Canceled]: spec("canceled", 499, "client", "never", "info"),
  [Code.Unknown]: spec("unknown", 500, "server", "never", "error"),
  [Code.InvalidArgument]: spec("invalid_argument", 400, "client", "never", "warn"),
  [Code.DeadlineExceeded]: spec("deadline_exceeded", 504, "server", "idempotent", "error"),
  [Code.NotFound]: spec("not_found", 404, "client", "never", "warn"),
  [Code.AlreadyExists]: spec("already_exists", 409, "client", "never", "warn"),
  [Code.PermissionDenied]: spec("permission_denied", 403, "client", "never", "warn"),
  [Code.ResourceExhausted]: spec("resource_exhausted", 429, "client", "after_delay", "warn"),
  [Code.FailedPrecondition]: spec("failed_precondition", 400, "client", "never", "warn"),
  [Code.Aborted]: spec("aborted", 409, "client", "idempotent", "warn"),
  [Code.OutOfRange]: spec("out_of_range", 400, "client", "never", "warn"),
  [Code.Unimplemented]: spec("unimplemented", 501, "server", "never", "error"),
  [Code.Internal]: spec("internal", 500, "server", "never", "error"),
  [Code.Unavailable]: spec("unavailable", 503, "server", "unavailable", "error"),
  [Code.DataLoss]: spec("data_loss", 500, "server", "never", "error"),
  [Code.Unauthenticated]: spec("unauthenticated", 401, "client", "never", "warn"),
};

/** Every non-OK code, in numeric order. */
export const allCodes: readonly Code[] = Object.keys(codeTable)
  .map(Number)
  .sort((a, b) => a - b);

const byName = new Map(allCodes.map((c) => [codeTable[c].name, c]));

/** Parses the Connect string form (`not_found`); undefined if unknown. */
export function codeFromName(name: string): Code | undefined {
  return byName.get(name);
}
