import { Counter, type Registry } from "prom-client";

/** Domain events that could not be handed to the event bus. */
export class EventMetrics {
  private readonly failures: Counter<string>;

  constructor(registry: Registry) {
    this.failures = new Counter({
      name: "bazbii_event_publish_failures_total",
      help: "Domain events the publisher could not deliver, by event name.",
      labelNames: ["event"],
      registers: [registry],
    });
    // Present from the start (at 0) for the events the system publishes, so alerts see the series.
    this.failures.inc({ event: "post.CreationFailedEvent" }, 0);
  }

  publishFailed(event: string): void {
    this.failures.inc({ event });
  }
}
