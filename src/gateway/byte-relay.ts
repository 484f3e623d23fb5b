import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { errorCatalog } from "../shared/errors/catalog.js";
import { protocolError } from "../shared/errors/protocol-errors.js";
import { type ErrorContext, logMessageFor, publicError, reasonOf } from "../shared/errors/public-error.js";
import { applyFault } from "../shared/fault-injection.js";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";
import { headerValue } from "../shared/http/header-value.js";
import { logmsg } from "../shared/logging/log-catalog.js";
import type { Logger } from "../shared/logging/logger.js";
import type { RpcMetrics } from "../shared/metrics/rpc-metrics.js";
import { newRequestContext, REQUEST_ID_HEADER, type RequestContext } from "../shared/request-context.js";
import { TRACEPARENT_HEADER, TRACESTATE_HEADER, traceparentOf } from "../shared/trace-context.js";
import { activeCall } from "../shared/tracing/call-record.js";
import type { ClientAddressOf } from "./client-address.js";
import { inspectsMessage, type RepeatRule, relayedServices, repeatRuleOf } from "./method-policy.js";
import { forwardedHeaders, type RelayPolicy, vouchedHeaders } from "./relay.js";
import type { RequestGate } from "./request-gate.js";
import type { UpstreamAnswer } from "./upstream/answer.js";
import type { Upstream } from "./upstream/upstream.js";
import { upstreamProtocolError } from "./upstream/upstream-errors.js";
import { connectUnary } from "./wire/connect-unary.js";
import { hasStringField } from "./wire/request-field.js";
import { type WireProtocol, wireProtocolOf } from "./wire/wire-protocol.js";
import { type AnyResponse, write, writeOwnError } from "./wire/write-response.js";

export interface ByteRelayDeps {
  readonly log: Logger;
  readonly upstream: Upstream;
  readonly gate: RequestGate;
  readonly clientAddressOf: ClientAddressOf;
  readonly policy: RelayPolicy;
  readonly metrics: RpcMetrics;
  readonly maxRequestBytes: number;
}

/** Headers of an answer that reach the caller: the protocol's, and error metadata clients act on. */
const ANSWER_HEADERS = [
  "content-type",
  "content-encoding",
  "grpc-encoding",
  "grpc-status",
  "grpc-message",
  "grpc-status-details-bin",
  "retry-after",
  "grpc-retry-pushback-ms",
] as const;

type Request = Parameters<RequestListener>[0];

/**
 * The gateway's fast path. A unary call in Connect, gRPC or gRPC-Web whose
 * message the gateway need not read is passed to the API server in the
 * caller's own protocol, its bytes unchanged, and the answer comes back the
 * same way: no decoding, re-encoding and second client stack, which cost most
 * of the hop (bench/README.md). Around the bytes the gateway still does all it
 * does for other calls: request id and trace, the request gate (shedding,
 * token, rate limit), the deadline clamp, fault injection, the circuit breaker,
 * metrics and logs, canonical errors for every transport failure, and only
 * allow-listed headers in either direction.
 *
 * Anything else (GetHeatmap, whose h3_res it checks; Connect GET; gRPC-Web
 * text; a malformed deadline or an announced oversize body, which connect-es
 * answers with its detailed protocol errors; plain HTTP routes) goes to `next`.
 */
export function createByteRelay(deps: ByteRelayDeps, next: RequestListener): RequestListener {
  const methods = new Map<string, DescMethod>();
  for (const service of relayedServices) {
    for (const method of service.methods) {
      if (method.methodKind === "unary" && !inspectsMessage(method)) {
        methods.set(`/${service.typeName}/${method.name}`, method);
      }
    }
  }
  const forwarded = forwardedHeaders(deps.policy.faultInjection);
  const repeatRules = new Map([...methods.values()].map((m) => [m, repeatRuleOf(m)]));
  const run = relayCall(deps, forwarded, repeatRules);

  return (req, res) => {
    const method = req.method === "POST" ? methods.get(req.url ?? "") : undefined;
    const contentType = req.headers["content-type"];
    const protocol = method === undefined ? undefined : wireProtocolOf(contentType);
    if (method === undefined || protocol === undefined || contentType === undefined) return next(req, res);
    const timeout = protocol.parseTimeout(headerValue(req.headers, protocol.timeoutHeader) ?? null);
    const announced = Number(req.headers["content-length"] ?? 0);
    if (timeout instanceof Error || announced > deps.maxRequestBytes + protocol.envelopeBytes) return next(req, res);
    const response = res as unknown as AnyResponse;
    run({ req, res: response, method, protocol, contentType, callerTimeoutMs: timeout }).catch((err: unknown) => {
      // A bug, not an RPC outcome: logged in full; the caller gets internal and the process lives on.
      logmsg.RelayFailed.emitError(deps.log, err, { "rpc.method": req.url });
      activeCall()?.settle({ code: Code.Internal, errorType: "INTERNAL" });
      const rc: ErrorContext = { requestId: headerValue(req.headers, REQUEST_ID_HEADER) ?? "", locale: "en" };
      writeOwnError(response, protocol, contentType, publicError(errorCatalog.INTERNAL, rc));
    });
  };
}

interface RelayedCall {
  readonly req: Request;
  readonly res: AnyResponse;
  readonly method: DescMethod;
  readonly protocol: WireProtocol;
  readonly contentType: string;
  readonly callerTimeoutMs: number | undefined;
}

function relayCall(
  deps: ByteRelayDeps,
  forwarded: readonly string[],
  repeatRules: ReadonlyMap<DescMethod, RepeatRule>,
): (call: RelayedCall) => Promise<void> {
  const { metrics, policy, upstream } = deps;
  const { deadlines, faultInjection } = policy;
  // Caller headers passed on per protocol: its own, then the gateway's forwarded ones.
  const passedOn = new Map<WireProtocol, readonly string[]>();
  const passedOnFor = (protocol: WireProtocol): readonly string[] => {
    let names = passedOn.get(protocol);
    if (names === undefined) {
      names = [...protocol.protocolHeaders, ...forwarded];
      passedOn.set(protocol, names);
    }
    return names;
  };

  return async ({ req, res, method, protocol, contentType, callerTimeoutMs }) => {
    const header = (name: string) => headerValue(req.headers, name) ?? null;
    const fields = { service: method.parent.typeName, method: method.name };
    const rc = newRequestContext(deps.log, `${fields.service}/${fields.method}`, header);
    if (Number(header("grpc-previous-rpc-attempts") ?? 0) > 0) metrics.retryObserved(fields);
    const done = (code: Code | "ok", reason: string | undefined): void =>
      metrics.serverCall(fields, { code, errorType: reason ?? "" }, (performance.now() - rc.startedAt) / 1000);

    // The call ends early when the caller goes away or a deadline passes: the
    // caller's own, or the gateway's (its clamp, or the default). `callerEnded`
    // tells which side it was, for the canonical error.
    const ending = new AbortController();
    let callerEnded: ConnectError | undefined;
    const end = (reason: ConnectError, byCaller: boolean): void => {
      if (byCaller) callerEnded ??= reason;
      ending.abort(reason);
    };
    res.once("close", () => {
      if (!res.writableFinished) end(new ConnectError("the caller went away", Code.Canceled), true);
    });
    const timeoutMs = Math.min(callerTimeoutMs ?? deadlines.defaultTimeoutMs, deadlines.maxTimeoutMs);
    const callerDeadline = callerTimeoutMs !== undefined && callerTimeoutMs <= deadlines.maxTimeoutMs;
    const timer = setTimeout(() => {
      end(new ConnectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded), callerDeadline);
    }, timeoutMs);

    let admitted: { release(): void } | undefined;
    try {
      admitted = await deps.gate(
        { method, authorization: header("authorization"), clientAddress: deps.clientAddressOf(req) },
        rc,
      );
    } catch (err) {
      // The gate has logged and counted its refusal.
      clearTimeout(timer);
      writeOwnError(res, protocol, contentType, ConnectError.from(err));
      return;
    }

    try {
      let body: Buffer;
      const faults = faultInjection ? toHeaders(req.headers) : undefined;
      try {
        body = await readBody(req, deps.maxRequestBytes + protocol.envelopeBytes, rc);
        if (faults !== undefined) await applyFault(faults, "gateway", rc, ending.signal);
      } catch (thrown) {
        const err = ConnectError.from(thrown);
        logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
        writeOwnError(res, protocol, contentType, err);
        done(err.code, reasonOf(err));
        return;
      }

      const headers: OutgoingHttpHeaders = vouchedHeaders(rc, header, passedOnFor(protocol), policy.internalAuthSecret);
      const repeat = repeatRules.get(method) as RepeatRule;
      const result = await upstream.run<UpstreamAnswer>(
        {
          labels: fields,
          system: protocol === connectUnary ? "connect_rpc" : "grpc", // the hop speaks the caller's protocol
          safeToRepeat: () =>
            repeat.always ||
            (repeat.keyField !== undefined &&
              hasStringField(
                {
                  body,
                  envelopeBytes: protocol.envelopeBytes,
                  json: contentType.includes("json"),
                  encoding: header(protocol.encodingHeader) ?? undefined,
                },
                repeat.keyField,
              )),
          callerRetrying: Number(header("grpc-previous-rpc-attempts") ?? 0) > 0,
          rc,
          signal: ending.signal,
          timeoutMs,
          callerEnded: () => callerEnded,
        },
        async (endpoint, trace) => {
          // Each attempt carries the time left of the one deadline, and its own place in the trace.
          headers[protocol.timeoutHeader] = protocol.formatTimeout(
            Math.max(1, Math.ceil(rc.startedAt + timeoutMs - performance.now())),
          );
          headers[TRACEPARENT_HEADER] = traceparentOf(trace);
          if (trace.state !== undefined) headers[TRACESTATE_HEADER] = trace.state;
          const answer = await endpoint.pool.exchange(
            req.url as string,
            headers,
            body,
            ending.signal,
            protocol.upstreamHttp,
          );
          return { value: answer, error: readAnswer(protocol, answer, contentType, rc) };
        },
      );
      let err = result.own ?? result.error;
      if (err === undefined && faults !== undefined) {
        err = await applyFault(faults, "gateway-response", rc, ending.signal).then(
          () => undefined,
          (thrown: unknown) => ConnectError.from(thrown),
        );
      }
      if (err === undefined) {
        writeAnswer(res, result.value as UpstreamAnswer);
        done("ok", undefined);
        return;
      }
      const reason = reasonOf(err);
      logmsg.APICallFailed.emitError(rc.log, err, { ...fields, reason, attempts: result.attempts });
      if (result.own === undefined && err === result.error) writeAnswer(res, result.value as UpstreamAnswer);
      else writeOwnError(res, protocol, contentType, err);
      done(err.code, reason);
    } finally {
      clearTimeout(timer);
      admitted.release();
    }
  };
}

/**
 * The protocol's reading of the API server's answer. Whatever goes wrong
 * reading it is the answer's fault, said as the canonical error for an answer
 * that is no RPC response: never a raw exception's message to the caller.
 */
function readAnswer(
  protocol: WireProtocol,
  answer: UpstreamAnswer,
  contentType: string,
  rc: RequestContext,
): ConnectError | undefined {
  try {
    return protocol.readAnswer(answer, contentType, rc);
  } catch (err) {
    throw reasonOf(err) !== undefined ? err : upstreamProtocolError(rc, err);
  }
}

/** A unary body, whole; over `limit` bytes it is refused as resource_exhausted. */
function readBody(req: Request, limit: number, rc: RequestContext): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume(); // drain what is left; the answer goes out at once
        reject(
          protocolError(Code.ResourceExhausted, `message size ${size} is larger than configured max ${limit}`, rc),
        );
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.once("error", reject);
    req.once("close", () => {
      if (!req.complete) reject(new ConnectError("the caller went away before sending its request", Code.Canceled));
    });
  });
}

function writeAnswer(res: AnyResponse, answer: UpstreamAnswer): void {
  write(res, {
    status: answer.status,
    headers: pick(answer.headers),
    body: answer.body,
    ...(answer.trailers === undefined ? {} : { trailers: pick(answer.trailers) }),
  });
}

function pick(from: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of ANSWER_HEADERS) {
    const value = headerValue(from, name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function toHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === "string" && !name.startsWith(":")) out.set(name, value);
  }
  return out;
}
