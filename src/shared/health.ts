import { EventEmitter, on } from "node:events";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/health/v1/health_pb.js";
import { errorCatalog } from "./errors/catalog.js";
import { publicError } from "./errors/public-error.js";
import { requestContextOf } from "./request-context.js";

/** Whether this process accepts work: false until started, and again once it begins to shut down. */
export class Readiness extends EventEmitter<{ change: [boolean] }> {
  #ready = false;

  get ready(): boolean {
    return this.#ready;
  }

  set(ready: boolean): void {
    if (ready === this.#ready) return;
    this.#ready = ready;
    this.emit("change", ready);
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
      for await (const _ of on(readiness, "change", { signal: ctx.signal })) yield { status: status() };
    },
  };
}

export { Health };
