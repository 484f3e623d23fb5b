import { ErrStorageConflict, ErrStorageUnavailable } from "../../domain/storage-errors.js";

/** SQLSTATE classes and codes that mean "the database is not there right now". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[123])/;
/** serialization_failure, deadlock_detected: the transaction lost a race and can be retried. */
const CONFLICT_SQLSTATE = new Set(["40001", "40P01"]);
/** Socket-level failures reaching the database. */
const UNAVAILABLE_NODE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
/** Messages of `pg` and PGlite that come without a code. */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|PGlite is closed|Cannot use a pool after calling end/i;

/**
 * Turns a driver error into the storage port's sentinel errors where callers
 * can act on it (retry later, retry now); anything else is returned as it is
 * and surfaces as `internal`. The driver error stays the cause, for the log.
 */
export function storageFailure(err: unknown): unknown {
  const code = err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : "";
  const message = err instanceof Error ? err.message : "";
  if (CONFLICT_SQLSTATE.has(code)) {
    return ErrStorageConflict.wrap("storage conflict", {}, err);
  }
  if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code) || UNAVAILABLE_MESSAGES.test(message)) {
    return ErrStorageUnavailable.wrap("storage unavailable", {}, err);
  }
  return err;
}
