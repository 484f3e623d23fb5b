import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { EventFeed } from "../../domain/event-feed.js";
import type { DomainEvent, EventPublisher } from "../../domain/event-publisher.js";

export interface NatsConfig {
  readonly url: string;
  /** Reconnect attempts after the connection is lost; -1 for ever. */
  readonly maxReconnectAttempts: number;
}

/** Domain events between API server replicas: each publishes its own and hears everyone's, its own too. */
export interface NatsEventBus extends EventPublisher, EventFeed {
  close(): Promise<void>;
}

/** Every domain event's subject. */
const ALL_EVENTS = "bazbii.events.>";

/** Subject of an event: `bazbii.events.post.CreationFailedEvent`. */
export function subjectOf(event: DomainEvent): string {
  return `bazbii.events.${event.name}`;
}

/**
 * Publishes domain events to NATS as JSON, and hands every replica's events
 * to this one's subscribers (core NATS: at most once, which is what a
 * subscriber that reads state again needs). While the connection is down the
 * client buffers and reconnects; a publish that cannot be accepted (the
 * connection closed for good) is reported through `onFailure`, never thrown:
 * an event that cannot be delivered must not fail the request that raised it.
 */
export async function openNatsEventBus(
  config: NatsConfig,
  onFailure: (event: DomainEvent, err: unknown) => void,
): Promise<NatsEventBus> {
  const nc: NatsConnection = await connect({
    servers: config.url,
    name: "bazbii-api",
    maxReconnectAttempts: config.maxReconnectAttempts,
    reconnectTimeWait: 250,
  });
  const listeners = new Set<(event: DomainEvent) => void>();
  nc.subscribe(ALL_EVENTS, {
    callback(err, msg) {
      if (err !== null || listeners.size === 0) return;
      let event: DomainEvent;
      try {
        event = msg.json<DomainEvent>();
      } catch {
        return; // not one of ours: nothing to hand on
      }
      if (typeof event?.name !== "string") return;
      for (const listener of listeners) listener(event);
    },
  });
  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    publish(event) {
      try {
        nc.publish(subjectOf(event), JSON.stringify({ ...event, time: new Date().toISOString() }));
      } catch (err) {
        onFailure(event, err);
      }
    },
    async close() {
      if (!nc.isClosed()) await nc.drain();
    },
  };
}
