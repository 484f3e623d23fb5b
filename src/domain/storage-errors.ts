import { DomainError } from "./errors.js";

/**
 * Failures of the storage port that callers can act on. Adapters wrap the
 * driver's error as the cause, so the log keeps it and the caller never sees it.
 */
export const ErrStorageUnavailable = DomainError.sentinel("STORAGE_UNAVAILABLE", "storage unavailable");

/** A write lost a race (serialization failure, deadlock); the operation can be retried. */
export const ErrStorageConflict = DomainError.sentinel("STORAGE_CONFLICT", "storage conflict");
