import type { DomainEvent } from "../event-publisher.js";

/**
 * Published whenever creating a post fails (seed: `post.CreationFailedEvent`).
 * `reason` is the failure's reason in lower snake case, e.g. `invalid_h3_index`.
 */
export interface CreationFailedEvent extends DomainEvent {
  readonly name: "post.CreationFailedEvent";
  readonly reason: string;
  readonly actorId: string;
}

export function creationFailed(reason: string, actorId: string): CreationFailedEvent {
  return { name: "post.CreationFailedEvent", reason: reason.toLowerCase(), actorId };
}
