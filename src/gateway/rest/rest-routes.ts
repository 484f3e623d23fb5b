import type { IncomingMessage, ServerResponse } from "node:http";
import type { DescMessage, DescMethod, MessageShape } from "@bufbuild/protobuf";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { errorCatalog } from "../../shared/errors/catalog.js";
import { protocolError } from "../../shared/errors/protocol-errors.js";
import { logMessageFor, publicError, reasonOf } from "../../shared/errors/public-error.js";
import type { RequestListener } from "../../shared/http/dual-protocol-server.js";
import { logmsg } from "../../shared/logging/log-catalog.js";
import type { Logger } from "../../shared/logging/logger.js";
import type { RpcMetrics } from "../../shared/metrics/rpc-metrics.js";
import {
  newRequestContext,
  openRequestContext,
  REQUEST_ID_HEADER,
  type RequestContext,
} from "../../shared/request-context.js";
import type { ClientAddressOf } from "../client-address.js";
import type { RequestGate } from "../request-gate.js";
import { matchPath, type RestRoute, restRouteOf } from "./http-rule.js";
import { restError } from "./rest-error.js";
import { bindRequest, RestBindingError } from "./rest-request.js";

type Message = MessageShape<DescMessage>;

/** How the gateway serves one method, whatever the protocol: the same relays the RPC routes use. */
export interface MethodHandlers {
  readonly unary: ReadonlyMap<DescMethod, (req: Message, ctx: HandlerContext) => Promise<Message>>;
  readonly streams: ReadonlyMap<DescMethod, (req: Message, ctx: HandlerContext) => AsyncIterable<Message>>;
}

export interface RestRoutesDeps {
  readonly log: Logger;
  readonly gate: RequestGate;
  readonly clientAddressOf: ClientAddressOf;
  readonly metrics: RpcMetrics;
  readonly maxRequestBytes: number;
  readonly shutdownSignal: AbortSignal;
  readonly handlers: MethodHandlers;
}

/**
 * REST/JSON transcoding (google.api.http, AIP-127) for every method that has
 * a rule: a request such as `GET /v1/posts/{id}` becomes the method's request
 * message and goes through the same gate and the same relay as the RPC
 * protocols; the answer is the response as JSON, an error is Google's JSON
 * error format with the HTTP status of the code table (rest-error.ts), and a
 * server stream is server-sent events (`data:` per message, `event: error`
 * for an error after the first). Paths under a route's first segment (`/v1`)
 * that match no route are answered 404 in that format; anything else goes
 * to `next`.
 */
export function createRestRoutes(
  services: readonly { methods: readonly DescMethod[] }[],
  deps: RestRoutesDeps,
  next: RequestListener,
): RequestListener {
  const routes = services.flatMap((s) => s.methods.flatMap((m) => restRouteOf(m) ?? []));
  const prefixes = new Set(routes.map((r) => `/${(r.template.split("/")[1] ?? "").split(":")[0]}/`));
  return (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const pathname = q === -1 ? url : url.slice(0, q);
    if (![...prefixes].some((p) => pathname.startsWith(p))) return next(req, res);
    const response = res as unknown as ServerResponse;
    const found = matchPath(routes, pathname).find(
      (m) => m.route.verb === (req.method === "HEAD" ? "GET" : req.method),
    );
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
    };
    if (found === undefined) {
      const rc = newRequestContext(deps.log, "rest", header);
      const err = publicError(errorCatalog.REST_ROUTE_NOT_FOUND, rc, {
        params: { verb: String(req.method).slice(0, 16), path: pathname.slice(0, 256) },
      });
      logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
      writeError(response, err);
      return;
    }
    serve(
      found.route,
      found.variables,
      new URLSearchParams(q === -1 ? "" : url.slice(q + 1)),
      req as IncomingMessage,
      response,
      deps,
    ).catch((err: unknown) => {
      // A bug, not an RPC outcome: logged in full; the caller gets internal.
      logmsg.RelayFailed.emitError(deps.log, err, { "rpc.method": pathname });
      writeError(
        response,
        publicError(errorCatalog.INTERNAL, { requestId: header(REQUEST_ID_HEADER) ?? "", locale: "en" }),
      );
    });
  };
}

async function serve(
  route: RestRoute,
  variables: Record<string, string>,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  deps: RestRoutesDeps,
): Promise<void> {
  const { method } = route;
  const labels = { service: method.parent.typeName, method: method.name };
  const gone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) gone.abort(new ConnectError("the caller went away", Code.Canceled));
  });
  const ctx = createHandlerContext({
    service: method.parent,
    method,
    protocolName: "rest",
    requestMethod: req.method ?? "GET",
    url: req.url ?? "/",
    shutdownSignal: deps.shutdownSignal,
    requestSignal: gone.signal,
    requestHeader: Object.entries(req.headers).flatMap(([k, v]) =>
      v === undefined ? [] : [[k, String(v)] as [string, string]],
    ),
  });
  const rc = openRequestContext(ctx, deps.log);
  const done = (err: ConnectError | undefined) =>
    deps.metrics.serverCall(
      labels,
      err === undefined ? { code: "ok", errorType: "" } : { code: err.code, errorType: reasonOf(err) ?? "" },
      (performance.now() - rc.startedAt) / 1000,
    );

  let admitted: { release(): void };
  try {
    admitted = await deps.gate(
      { method, authorization: ctx.requestHeader.get("authorization"), clientAddress: deps.clientAddressOf(req) },
      rc,
    );
  } catch (err) {
    writeError(res, ConnectError.from(err)); // the gate logged and counted it
    return;
  }
  try {
    let message: Message;
    try {
      const body = route.body === undefined ? "" : await readText(req, deps.maxRequestBytes, rc);
      message = bindRequest(route, method.input, variables, query, body);
    } catch (thrown) {
      const err =
        thrown instanceof RestBindingError
          ? protocolError(Code.InvalidArgument, thrown.message, rc, thrown.field)
          : ConnectError.from(thrown);
      logMessageFor(err, "gateway", logmsg.RequestRejected.id).emitError(rc.log, err, { reason: reasonOf(err) });
      writeError(res, err);
      done(err);
      return;
    }
    const unary = deps.handlers.unary.get(method);
    if (unary !== undefined) {
      try {
        const answer = await unary(message, ctx);
        writeJson(res, 200, {}, toJson(method.output, answer));
        done(undefined);
      } catch (thrown) {
        const err = ConnectError.from(thrown);
        writeError(res, err); // the relay logged it
        done(err);
      }
      return;
    }
    await serveEvents(res, deps.handlers.streams.get(method)?.(message, ctx), method.output, rc, deps.metrics, labels);
  } finally {
    admitted.release();
    ctx.abort();
  }
}

/**
 * A server stream as server-sent events: each message as `data: <JSON>`; an
 * error before the first message as an ordinary error answer (its status is
 * still to be chosen), after it as `event: error` with the same JSON error.
 */
async function serveEvents(
  res: ServerResponse,
  stream: AsyncIterable<Message> | undefined,
  output: DescMessage,
  rc: RequestContext,
  metrics: RpcMetrics,
  labels: { service: string; method: string },
): Promise<void> {
  if (stream === undefined) throw new Error(`no handler for ${labels.service}/${labels.method}`);
  let opened = false;
  let outcome: ConnectError | undefined;
  metrics.streamOpened(labels);
  try {
    for await (const message of stream) {
      if (!opened) {
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
        });
        opened = true;
      }
      if (!res.write(`data: ${JSON.stringify(toJson(output, message))}\n\n`)) await drained(res);
      metrics.streamMessageSent(labels);
    }
    if (!opened) res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
    res.end();
  } catch (thrown) {
    outcome = ConnectError.from(thrown);
    if (!opened) {
      writeError(res, outcome);
    } else if (!res.writableEnded && !res.destroyed) {
      res.end(`event: error\ndata: ${JSON.stringify(restError(outcome).body)}\n\n`);
    }
  } finally {
    metrics.streamClosed(
      labels,
      outcome === undefined
        ? { code: "ok", errorType: "" }
        : { code: outcome.code, errorType: reasonOf(outcome) ?? "" },
      (performance.now() - rc.startedAt) / 1000,
    );
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

function writeError(res: ServerResponse, err: ConnectError): void {
  const { status, headers, body } = restError(err);
  writeJson(res, status, headers, body);
}

function writeJson(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  if (res.headersSent || res.destroyed) return; // the caller went away
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": String(text.length) });
  res.end(text);
}

/** The request body as text, at most `limit` bytes (more is resource_exhausted, as for the RPC protocols). */
function readText(req: IncomingMessage, limit: number, rc: RequestContext): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        req.removeAllListeners("data");
        req.resume();
        reject(
          protocolError(Code.ResourceExhausted, `message size ${size} is larger than configured max ${limit}`, rc),
        );
      }
    });
    req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.once("error", reject);
  });
}
