import { AsyncLocalStorage } from "node:async_hooks";
import type { DomainEvent, EventPublisher } from "../domain/event-publisher.js";
import type { Logger } from "../shared/logging/logger.js";

interface RequestScope {
  readonly events: DomainEvent[];
  /** The request's context; its logger is made only if something logs. */
  readonly request: { readonly log: Logger };
}

const currentRequest = new AsyncLocalStorage<RequestScope>();

/**
 * Runs one request's work while remembering the domain events it publishes,
 * so the error boundary can log a failure under its event's log ID, once.
 */
export function recordingEvents<T>(scope: RequestScope, work: () => Promise<T>): Promise<T> {
  return currentRequest.run(scope, work);
}

/** The logger of the request being served, if any. */
export function currentRequestLog(): Logger | undefined {
  return currentRequest.getStore()?.request.log;
}

/**
 * The application's publisher: hands each event to the request that published
 * it, then to the event bus when one is configured.
 */
export function createEventPublisher(bus?: EventPublisher): EventPublisher {
  return {
    publish(event) {
      currentRequest.getStore()?.events.push(event);
      bus?.publish(event);
    },
  };
}
