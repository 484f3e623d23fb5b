import { type ContextValues, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { ErrorContext } from "./errors/public-error.js";
import { type Locale, negotiateLocale } from "./locale.js";
import type { Logger } from "./logging/logger.js";
import { continueTrace, TRACEPARENT_HEADER, type TraceContext } from "./trace-context.js";

export const REQUEST_ID_HEADER = "x-request-id";

/** What one RPC carries through a process: who, which request, in which language, and its logger. */
export interface RequestContext extends ErrorContext {
  /** Fully qualified method, e.g. `bazbii.post.v1.UserPostService/Create`. */
  readonly rpcMethod: string;
  /** W3C trace context of this hop; its trace id is shared by every process the request crosses. */
  readonly trace: TraceContext;
  /** When the request gate opened the context (performance.now()), for durations. */
  readonly startedAt: number;
  /** Child logger: every line carries `request_id`, `trace_id`, `rpc.method` (and `actor_id` once known). */
  readonly log: Logger;
  readonly actorId: string | undefined;
}

/**
 * The request context, with its child logger made on first use: most calls
 * succeed and log nothing, and a pino child per call is a measurable part of
 * the gateway's hop.
 */
class OpenRequest implements RequestContext {
  readonly requestId: string;
  readonly rpcMethod: string;
  readonly trace: TraceContext;
  readonly startedAt: number;
  readonly locale: Locale;
  actorId: string | undefined;
  #log: Logger | undefined;

  constructor(
    private readonly baseLog: Logger,
    requestId: string,
    rpcMethod: string,
    trace: TraceContext,
    locale: Locale,
  ) {
    this.requestId = requestId;
    this.rpcMethod = rpcMethod;
    this.trace = trace;
    this.locale = locale;
    this.startedAt = performance.now();
  }

  get log(): Logger {
    this.#log ??= this.baseLog.child({
      request_id: this.requestId,
      trace_id: this.trace.traceId,
      "rpc.method": this.rpcMethod,
      ...(this.actorId === undefined ? {} : { actor_id: this.actorId }),
    });
    return this.#log;
  }

  setActor(actorId: string): void {
    this.actorId = actorId;
    if (this.#log !== undefined) this.#log = this.#log.child({ actor_id: actorId });
  }
}

const requestContextKey = createContextKey<RequestContext | undefined>(undefined, {
  description: "bazbii request context",
});

/** Ids we accept from callers: what common generators produce, bounded, safe in logs and headers. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The caller's request id when well-formed, else a new one. */
export function acceptRequestId(header: string | null): string {
  return header !== null && REQUEST_ID_PATTERN.test(header) ? header : crypto.randomUUID();
}

/**
 * Opens the request context of an RPC (in a request gate, before the body is
 * read): request id (accepted or made, and echoed, by the HTTP server's
 * tagRequestId), language negotiated, child logger made on first use.
 */
export function openRequestContext(ctx: HandlerContext, baseLog: Logger): RequestContext {
  const rc = newRequestContext(baseLog, `${ctx.service.typeName}/${ctx.method.name}`, (name) =>
    ctx.requestHeader.get(name),
  );
  ctx.values.set(requestContextKey, rc);
  return rc;
}

/**
 * A request context from the request's headers alone, for code that serves a
 * call without connect-es's handler context (the gateway's byte relay).
 */
export function newRequestContext(
  baseLog: Logger,
  rpcMethod: string,
  header: (name: string) => string | null,
): RequestContext {
  return new OpenRequest(
    baseLog,
    acceptRequestId(header(REQUEST_ID_HEADER)),
    rpcMethod,
    continueTrace(header(TRACEPARENT_HEADER)),
    negotiateLocale(header("accept-language")),
  );
}

/** Records who is acting, in the context and on every later log line. */
export function setActor(rc: RequestContext, actorId: string): void {
  (rc as OpenRequest).setActor(actorId);
}

/** The context opened by the request gate. */
export function requestContextOf(values: ContextValues): RequestContext {
  const rc = values.get(requestContextKey);
  if (rc === undefined) throw new Error("request context missing: the request gate did not run");
  return rc;
}
