import type { DescMessage, DescMethodServerStreaming, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { errorCatalog } from "../shared/errors/catalog.js";
import { logMessageFor, publicError, reasonOf } from "../shared/errors/public-error.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import { type RequestContext, requestContextOf } from "../shared/request-context.js";
import { repeatRuleOf, validateBeforeUpstream } from "./method-policy.js";
import { forwardedHeaders, type RelayPolicy, setTraceHeaders, upstreamSystemOf, vouchedHeaders } from "./relay.js";
import type { Upstream } from "./upstream/upstream.js";
import { fromUpstreamFailure, relayed } from "./upstream/upstream-errors.js";

export interface StreamPolicy {
  /** MAX_STREAM_DURATION_MS: a stream open this long is ended with STREAM_DURATION_REACHED. */
  readonly maxDurationMs: number;
  /** Aborted when the gateway begins to drain: its streams end with STREAM_DRAINED. */
  readonly drainSignal: AbortSignal;
}

/** How a stream's upstream side was opened: its first message read, the rest to come. */
interface Opened<O> {
  readonly first: IteratorResult<O>;
  readonly rest: AsyncIterator<O>;
}

/**
 * The gateway's implementation of one server-streaming method: the same checks
 * as a unary call, then one upstream stream, opened on an endpoint the
 * balancer picks and, until its first message arrived, opened again on
 * another one as a unary call would be retried (upstream.run). From then on
 * every message is passed on as it comes, and so is how the stream ends: the
 * API server's error with its code, message and details, or the gateway's own
 * canonical one (the API server lost: unavailable; its deadline; draining; the
 * longest duration). The caller going away cancels the upstream stream.
 */
export function createStreamRelay<I extends DescMessage, O extends DescMessage>(
  method: DescMethodServerStreaming<I, O>,
  upstream: Upstream,
  policy: RelayPolicy,
  { maxDurationMs, drainSignal }: StreamPolicy,
): (req: MessageShape<I>, ctx: HandlerContext) => AsyncGenerator<MessageShape<O>> {
  const { faultInjection, internalAuthSecret } = policy;
  const labels = { service: method.parent.typeName, method: method.name };
  const system = upstreamSystemOf(policy);
  const forwarded = forwardedHeaders(faultInjection);
  const repeat = repeatRuleOf(method);
  return async function* relayStream(req, ctx) {
    const rc = requestContextOf(ctx.values);
    try {
      validateBeforeUpstream(method, req, rc);
    } catch (err) {
      logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
      throw err;
    }
    // The caller's deadline if it set one; else the longest a stream may last, and a little more
    // so that the gateway's own end (STREAM_DURATION_REACHED) comes first.
    const timeoutMs = ctx.timeoutMs() ?? maxDurationMs + 1_000;
    const headers = new Headers(
      vouchedHeaders(rc, (name) => ctx.requestHeader.get(name), forwarded, internalAuthSecret),
    );
    // Ends the upstream stream when the gateway ends the call itself (duration, draining) or is done with it.
    const own = new AbortController();
    const signal = AbortSignal.any([ctx.signal, own.signal]);
    const callerEnded = () => (ctx.signal.aborted ? ctx.signal.reason : undefined);
    const fail = (err: ConnectError, attempts: number): ConnectError => {
      logmsg.APICallFailed.emitError(rc.log, err, { ...labels, reason: reasonOf(err), attempts });
      return err;
    };

    const opened = await upstream.run<Opened<MessageShape<O>> | undefined>(
      {
        labels,
        system,
        safeToRepeat: () => repeat.always,
        callerRetrying: Number(ctx.requestHeader.get("grpc-previous-rpc-attempts") ?? 0) > 0,
        rc,
        signal,
        timeoutMs,
        callerEnded,
      },
      async (endpoint, trace) => {
        const left = Math.max(1, Math.ceil(rc.startedAt + timeoutMs - performance.now()));
        setTraceHeaders(headers, trace);
        const response = await endpoint.pool.stream(method, req, { signal, timeoutMs: left, headers });
        const rest = response.message[Symbol.asyncIterator]();
        try {
          return { value: { first: await rest.next(), rest } };
        } catch (err) {
          const e = ConnectError.from(err);
          if (!e.isWireError) throw err;
          return { value: undefined, error: relayed(e) }; // the API server's own answer, before any message
        }
      },
    );
    const early = opened.own ?? opened.error;
    if (early !== undefined) throw fail(early, opened.attempts);
    const { first, rest } = opened.value as Opened<MessageShape<O>>;

    const endOwn = (reason: ConnectError): void => {
      if (!own.signal.aborted) own.abort(reason);
    };
    const longest = setTimeout(
      () => endOwn(publicError(errorCatalog.STREAM_DURATION_REACHED, rc, { params: { maxMs: String(maxDurationMs) } })),
      Math.max(0, maxDurationMs - (performance.now() - rc.startedAt)),
    );
    const onDrain = () => endOwn(publicError(errorCatalog.STREAM_DRAINED, rc));
    drainSignal.addEventListener("abort", onDrain, { once: true });
    if (drainSignal.aborted) onDrain();
    try {
      if (first.done === true) return;
      yield first.value;
      for (;;) {
        const next = await rest.next();
        if (next.done === true) return;
        yield next.value;
      }
    } catch (thrown) {
      throw fail(midStreamError(thrown, own.signal, callerEnded(), rc, timeoutMs), opened.attempts);
    } finally {
      clearTimeout(longest);
      drainSignal.removeEventListener("abort", onDrain);
      if (!own.signal.aborted) own.abort(); // done: the upstream stream goes too
      rest.return?.().catch(() => {}); // ended already, one way or another: only its slot is given back
    }
  };
}

/**
 * How a stream that had begun ended, for its caller: the gateway's own end
 * (duration, draining) as it said; the API server's error as it sent it; the
 * caller's own end as canceled or deadline_exceeded; and any other failure of
 * the path — the API server gone, the connection lost — unavailable, which
 * the caller can watch again from.
 */
function midStreamError(
  thrown: unknown,
  own: AbortSignal,
  callerEnded: unknown,
  rc: RequestContext,
  timeoutMs: number,
): ConnectError {
  if (own.aborted && own.reason instanceof ConnectError) return own.reason;
  const err = ConnectError.from(thrown);
  if (err.isWireError) return relayed(err);
  const mapped = fromUpstreamFailure(thrown, rc, { timeoutMs, callerEnded });
  if (mapped.code === Code.Canceled || mapped.code === Code.DeadlineExceeded || mapped.code === Code.Unavailable) {
    return mapped;
  }
  return publicError(errorCatalog.UPSTREAM_CONNECTION_LOST, rc, { cause: thrown });
}
