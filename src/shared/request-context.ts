import { type ContextValues, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { ErrorContext } from "./errors/public-error.js";
import { type Locale, negotiateLocale } from "./locale.js";
import type { Logger } from "./logging/logger.js";
import { continueTrace, TRACEPARENT_HEADER, type TraceContext } from "./trace-context.js";
import { activeCall, type CallRecord } from "./tracing/call-record.js";

export const REQUEST_ID_HEADER = "x-request-id";

/** What one RPC carries through a process: who, which request, in which language, and its logger. */
export interface RequestContext extends ErrorContext {
  /** Fully qualified method, e.g. `bazbii.post.v1.UserPostService/Create`. */
  readonly rpcMethod: string;
  /** W3C trace context of this hop; its trace id is shared by every process the request crosses. */
  readonly trace: TraceContext;
  /** When the call's first bytes arrived (performance.now()), for durations and deadlines. */
  readonly startedAt: number;
  /** Child logger: every line carries `request_id`, `trace_id`, `rpc.method` (and `actor_id` once known). */
  readonly log: Logger;
  readonly actorId: string | undefined;
  /** The call as its server observes it (access log, server span), when observe-calls opened one. */
  readonly call: CallRecord | undefined;
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
  readonly call: CallRecord | undefined;
  actorId: string | undefined;
  #log: Logger | undefined;

  constructor(
    private readonly baseLog: Logger,
    requestId: string,
    rpcMethod: string,
    locale: Locale,
    call: CallRecord | undefined,
    traceparent: string | null,
  ) {
    this.requestId = requestId;
    this.rpcMethod = rpcMethod;
    this.locale = locale;
    this.call = call;
    // The call's trace and clock when its server observes it; else this hop's own.
    this.trace = call?.trace ?? continueTrace(traceparent);
    this.startedAt = call?.startedAt ?? performance.now();
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
    if (this.call !== undefined) this.call.actorId = actorId;
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
  const call = rc.call;
  if (call !== undefined) {
    // connect-es hands every error it answers to the context's abort (and calls it
    // with no reason once a call succeeded): the call's outcome even where no
    // handler ran, e.g. a body that does not decode.
    const controller = ctx as HandlerContext & { abort(reason?: unknown): void };
    const abort = controller.abort.bind(controller);
    controller.abort = (reason?: unknown) => {
      call.answered(reason);
      abort(reason);
    };
  }
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
  const call = activeCall();
  return new OpenRequest(
    baseLog,
    acceptRequestId(header(REQUEST_ID_HEADER)),
    rpcMethod,
    negotiateLocale(header("accept-language")),
    call,
    call === undefined ? header(TRACEPARENT_HEADER) : null,
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
