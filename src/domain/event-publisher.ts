/** Something that happened in the domain, named like `post.CreationFailedEvent`. */
export interface DomainEvent {
  readonly name: string;
}

/**
 * Port for domain events. Publishing never fails the operation that publishes:
 * adapters report their own delivery failures.
 */
export interface EventPublisher {
  publish(event: DomainEvent): void;
}
