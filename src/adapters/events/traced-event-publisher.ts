import { SpanKind } from "@opentelemetry/api";
import type { DomainEvent, EventPublisher } from "../../domain/event-publisher.js";
import { startChildSpan } from "../../shared/tracing/call-record.js";
import { subjectOf } from "./nats-event-bus.js";

/**
 * The event bus, each publish a PRODUCER span of the call that raised the
 * event (OpenTelemetry's messaging conventions: `send bazbii.events.<name>`,
 * messaging.system `nats`, or `in_process` for the bus within one API
 * server). The event itself, which names its actor, is no attribute.
 */
export function tracedEventPublisher(bus: EventPublisher, system: "nats" | "in_process"): EventPublisher {
  return {
    publish(event: DomainEvent) {
      const span = startChildSpan(() => {
        const subject = subjectOf(event);
        return {
          name: `send ${subject}`,
          kind: SpanKind.PRODUCER,
          attributes: {
            "messaging.system": system,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": subject,
          },
        };
      });
      try {
        bus.publish(event);
      } finally {
        span?.end();
      }
    },
  };
}
