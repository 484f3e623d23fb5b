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
import { inspectsMessage, relayedServices } from "./method-policy.js";
import { forwardedHeaders, type RelayPolicy, vouchedHeaders } from "./relay.js";
import { clientAddressOf, type RequestGate } from "./request-gate.js";
import type { Upstream, UpstreamAnswer } from "./upstream.js";
import { fromUpstreamFailure } from "./upstream-errors.js";
import { type OwnResponse, type WireProtocol, wireProtocolOf } from "./wire/wire-protocol.js";

export interface ByteRelayDeps {
  readonly log: Logger;
  readonly upstream: Upstream;
  readonly gate: RequestGate;
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

/** What both Node response types offer (their writeHead signatures differ). */
interface AnyResponse {
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: Uint8Array): unknown;
  addTrailers(trailers: OutgoingHttpHeaders): void;
  end(body?: Uint8Array): unknown;
  once(event: "close", listener: () => void): unknown;
  readonly writableFinished: boolean;
  readonly headersSent: boolean;
}

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
  const run = relayCall(deps, forwarded);

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
      const rc: ErrorContext = { requestId: crypto.randomUUID(), locale: "en" };
      writeOwnError(response, protocol, contentType, publicError(errorCatalog.INTERNAL, rc), rc);
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

function relayCall(deps: ByteRelayDeps, forwarded: readonly string[]): (call: RelayedCall) => Promise<void> {
  const { metrics, policy, upstream } = deps;
  const { deadlines, breaker, faultInjection } = policy;
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
        { method, authorization: header("authorization"), clientAddress: clientAddressOf(req) },
        rc,
      );
    } catch (err) {
      // The gate has logged and counted its refusal.
      clearTimeout(timer);
      writeOwnError(res, protocol, contentType, ConnectError.from(err), rc);
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
        writeOwnError(res, protocol, contentType, err, rc);
        done(err.code, reasonOf(err));
        return;
      }

      const headers: OutgoingHttpHeaders = vouchedHeaders(rc, header, passedOnFor(protocol));
      headers[protocol.timeoutHeader] = protocol.formatTimeout(
        Math.max(1, Math.ceil(rc.startedAt + timeoutMs - performance.now())),
      );
      const started = performance.now();
      let relayed: { error: ConnectError; answer: UpstreamAnswer } | undefined;
      try {
        const answer = await breaker.run(async () => {
          let answer: UpstreamAnswer;
          try {
            answer = await upstream.exchange(req.url as string, headers, body, ending.signal, protocol.upstreamHttp);
          } catch (thrown) {
            throw fromUpstreamFailure(thrown, rc, { timeoutMs, callerEnded });
          }
          const error = protocol.readAnswer(answer, contentType, rc);
          if (error !== undefined) {
            relayed = { error, answer };
            throw error;
          }
          return answer;
        }, rc);
        if (faults !== undefined) await applyFault(faults, "gateway-response", rc, ending.signal);
        metrics.clientCall(fields, { code: "ok", errorType: "" }, (performance.now() - started) / 1000);
        writeAnswer(res, answer, rc);
        done("ok", undefined);
      } catch (thrown) {
        const err = ConnectError.from(thrown);
        const reason = reasonOf(err);
        metrics.clientCall(fields, { code: err.code, errorType: reason ?? "" }, (performance.now() - started) / 1000);
        logmsg.APICallFailed.emitError(rc.log, err, { ...fields, reason });
        if (relayed !== undefined && relayed.error === err) writeAnswer(res, relayed.answer, rc);
        else writeOwnError(res, protocol, contentType, err, rc);
        done(err.code, reason);
      }
    } finally {
      clearTimeout(timer);
      admitted.release();
    }
  };
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

function writeAnswer(res: AnyResponse, answer: UpstreamAnswer, rc: RequestContext): void {
  write(res, {
    status: answer.status,
    headers: { ...pick(answer.headers), [REQUEST_ID_HEADER]: rc.requestId },
    body: answer.body,
    ...(answer.trailers === undefined ? {} : { trailers: pick(answer.trailers) }),
  });
}

function writeOwnError(
  res: AnyResponse,
  protocol: WireProtocol,
  contentType: string,
  err: ConnectError,
  rc: ErrorContext,
): void {
  const response = protocol.errorResponse(err, contentType);
  write(res, { ...response, headers: { ...response.headers, [REQUEST_ID_HEADER]: rc.requestId } });
}

function write(res: AnyResponse, { status, headers, body, trailers }: OwnResponse): void {
  if (res.headersSent || res.writableFinished) return; // the caller went away
  // A length spares HTTP/1.1 callers chunked framing; gRPC's Trailers-Only answers have no body at all.
  if (trailers === undefined && headers["grpc-status"] === undefined)
    headers["content-length"] = String(body?.length ?? 0);
  try {
    res.writeHead(status, headers);
    if (trailers === undefined && body !== undefined && body.length > 0) {
      res.end(body); // head and body in one write
    } else if (trailers === undefined) {
      res.end();
    } else {
      if (body !== undefined && body.length > 0) res.write(body);
      res.addTrailers(trailers);
      res.end();
    }
  } catch (err) {
    // Only a stream the caller already reset gets here (ERR_HTTP2_INVALID_STREAM): nobody is left to answer.
    if (!(err instanceof Error && "code" in err && String(err.code).startsWith("ERR_HTTP2"))) throw err;
  }
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
