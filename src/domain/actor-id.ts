import { DomainError } from "./errors.js";

/** The id of whoever acts: the JWT subject, forwarded by the gateway. */
export type ActorId = string & { readonly __brand: "ActorId" };

export const ACTOR_ID_MAX_LENGTH = 128;

export const ErrInvalidActorId = DomainError.sentinel("INVALID_ACTOR_ID", "invalid actor id");

/** Printable, no whitespace: an actor id goes into logs, headers and SQL parameters. */
const ACTOR_ID_PATTERN = /^[\x21-\x7e]+$/;

export function parseActorId(raw: string): ActorId {
  if (raw.length === 0 || raw.length > ACTOR_ID_MAX_LENGTH || !ACTOR_ID_PATTERN.test(raw)) {
    throw ErrInvalidActorId.wrap(
      `actor_id must be 1 to ${ACTOR_ID_MAX_LENGTH} printable ASCII characters without spaces`,
      { maxLength: String(ACTOR_ID_MAX_LENGTH) },
    );
  }
  return raw as ActorId;
}
