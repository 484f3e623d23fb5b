import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { DomainEvent, EventPublisher } from "../../domain/event-publisher.js";

export interface NatsConfig {
  readonly url: string;
  /** Reconnect attempts after the connection is lost; -1 for ever. */
  readonly maxReconnectAttempts: number;
}

export interface NatsEventPublisher extends EventPublisher {
  close(): Promise<void>;
}

/** Subject of an event: `bazbii.events.post.CreationFailedEvent`. */
export function subjectOf(event: DomainEvent): string {
  return `bazbii.events.${event.name}`;
}

/**
 * Publishes domain events to NATS as JSON. While the connection is down the
 * client buffers and reconnects; a publish that cannot be accepted (the
 * connection closed for good) is reported through `onFailure`, never thrown:
 * an event that cannot be delivered must not fail the request that raised it.
 */
export async function openNatsEventPublisher(
  config: NatsConfig,
  onFailure: (event: DomainEvent, err: unknown) => void,
): Promise<NatsEventPublisher> {
  const nc: NatsConnection = await connect({
    servers: config.url,
    name: "bazbii-api",
    maxReconnectAttempts: config.maxReconnectAttempts,
    reconnectTimeWait: 250,
  });
  return {
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
