import { AsyncLocalStorage } from "node:async_hooks";
import type { DomainEvent, EventPublisher } from "../domain/event-publisher.js";

const currentRequestEvents = new AsyncLocalStorage<DomainEvent[]>();

/**
 * Runs one request's work while remembering the domain events it publishes,
 * so the error boundary can log a failure under its event's log ID, once.
 */
export function recordingEvents<T>(events: DomainEvent[], work: () => Promise<T>): Promise<T> {
  return currentRequestEvents.run(events, work);
}

/** The in-process publisher: hands each event to the request that published it. */
export const requestEventPublisher: EventPublisher = {
  publish(event) {
    currentRequestEvents.getStore()?.push(event);
  },
};
