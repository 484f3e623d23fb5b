import type { EventFeed } from "../../domain/event-feed.js";
import type { DomainEvent, EventPublisher } from "../../domain/event-publisher.js";

/**
 * Domain events within one process, for an API server without NATS: every
 * event published is handed to every subscriber, after the publishing call
 * has returned (a subscriber never runs inside, or fails, the request that
 * published).
 */
export function createInProcessEventBus(): EventPublisher & EventFeed {
  const listeners = new Set<(event: DomainEvent) => void>();
  return {
    publish(event) {
      if (listeners.size === 0) return;
      queueMicrotask(() => {
        for (const listener of listeners) listener(event);
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
