import type { DomainEvent } from "./event-publisher.js";

/**
 * Port: the domain events of every API server replica, as they happen (NATS
 * between replicas, in process for one). Delivery is at most once: a listener
 * that needs state reads it again rather than counting events.
 */
export interface EventFeed {
  /** Calls `listener` for every event from now on; returns the way to stop. */
  subscribe(listener: (event: DomainEvent) => void): () => void;
}
