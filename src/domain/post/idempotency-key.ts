import { ErrInvalidRequestId } from "./post-errors.js";

/** A client-chosen key that makes Create safe to retry (AIP-155 `request_id`). */
export type IdempotencyKey = string & { readonly __brand: "IdempotencyKey" };

export const IDEMPOTENCY_KEY_MAX_LENGTH = 128;

const KEY_PATTERN = /^[\x21-\x7e]+$/;

/** Empty means "no key": the create is not deduplicated. */
export function parseIdempotencyKey(raw: string): IdempotencyKey | undefined {
  if (raw.length === 0) return undefined;
  if (raw.length > IDEMPOTENCY_KEY_MAX_LENGTH || !KEY_PATTERN.test(raw)) {
    throw ErrInvalidRequestId.wrap(
      `request_id must be 1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters without spaces`,
      { maxLength: String(IDEMPOTENCY_KEY_MAX_LENGTH) },
    );
  }
  return raw as IdempotencyKey;
}
