import { EventEmitter, on, setMaxListeners } from "node:events";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/health/v1/health_pb.js";
import { errorCatalog } from "./errors/catalog.js";
import { publicError } from "./errors/public-error.js";
import { requestContextOf } from "./request-context.js";

/**
 * Whether this process should get new work (readiness, as opposed to
 * liveness): once started, until it begins to drain, and while what it
 * depends on answers (the API server's storage, the gateway's API servers).
 */
export class Readiness extends EventEmitter<{ change: [boolean] }> {
  #started = false;
  #draining = false;
  #dependencyUp = true;
  readonly #drained = new AbortController();

  constructor() {
    super();
    setMaxListeners(0, this.#drained.signal); // every open stream listens
  }

  /** Aborted when draining begins: long-lived streams end then, so their clients move elsewhere. */
  get drainSignal(): AbortSignal {
    return this.#drained.signal;
  }

  get ready(): boolean {
    return this.#started && !this.#draining && this.#dependencyUp;
  }

  get draining(): boolean {
    return this.#draining;
  }

  started(): void {
    this.#update(() => {
      this.#started = true;
    });
  }

  /** Shutting down: not ready from now on, whatever else happens. */
  drain(): void {
    this.#update(() => {
      this.#draining = true;
    });
    this.#drained.abort();
  }

  /** Whether what the process depends on answers now. */
  dependency(up: boolean): void {
    this.#update(() => {
      this.#dependencyUp = up;
    });
  }

  #update(change: () => void): void {
    const before = this.ready;
    change();
    if (this.ready !== before) this.emit("change", this.ready);
  }
}

/** grpc.health.v1.Health for this process's services; "" names the whole server. */
export function createHealthService(
  readiness: Readiness,
  services: readonly DescService[],
): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services.map((s) => s.typeName)]);
  const status = (): Status => (readiness.ready ? Status.SERVING : Status.NOT_SERVING);
  return {
    check(req, ctx) {
      if (!known.has(req.service)) {
        throw publicError(errorCatalog.HEALTH_SERVICE_UNKNOWN, requestContextOf(ctx.values), {
          params: { service: req.service.slice(0, 256) },
        });
      }
      return { status: status() };
    },
    list() {
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status: status() }])) };
    },
    async *watch(req, ctx) {
      if (!known.has(req.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        return;
      }
      yield { status: status() };
      try {
        for await (const _ of on(readiness, "change", { signal: ctx.signal })) yield { status: status() };
      } catch (err) {
        // The server shuts down (or the watcher left): the stream ends, and the
        // watcher, which saw NOT_SERVING when draining began, looks elsewhere.
        if (!ctx.signal.aborted) throw err;
      }
    },
  };
}

export { Health };
