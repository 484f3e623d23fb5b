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

/** Published when a post is stored (or found stored under its idempotency key): its cell's counts changed. */
export interface PostCreatedEvent extends DomainEvent {
  readonly name: "post.CreatedEvent";
  readonly postId: string;
  readonly h3Index: string;
}

/** Published when a post is deleted: its cell's counts changed. */
export interface PostDeletedEvent extends DomainEvent {
  readonly name: "post.DeletedEvent";
  readonly postId: string;
  readonly h3Index: string;
}

export function postCreated(postId: string, h3Index: string): PostCreatedEvent {
  return { name: "post.CreatedEvent", postId, h3Index };
}

export function postDeleted(postId: string, h3Index: string): PostDeletedEvent {
  return { name: "post.DeletedEvent", postId, h3Index };
}

/** The cell whose posts an event changed, if it is one that does. */
export function changedCellOf(event: DomainEvent): string | undefined {
  return event.name === "post.CreatedEvent" || event.name === "post.DeletedEvent"
    ? (event as PostCreatedEvent | PostDeletedEvent).h3Index
    : undefined;
}
