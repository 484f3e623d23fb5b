import { isIP } from "node:net";
import { Code, type ConnectError } from "@connectrpc/connect";
import { context, type Span, trace } from "@opentelemetry/api";
import { errorCatalog } from "../../shared/errors/catalog.js";
import { publicError, reasonOf } from "../../shared/errors/public-error.js";
import { logmsg } from "../../shared/logging/log-catalog.js";
import type { Logger } from "../../shared/logging/logger.js";
import type { CallOutcome, MethodLabels, RpcMetrics } from "../../shared/metrics/rpc-metrics.js";
import type { UpstreamMetrics } from "../../shared/metrics/upstream-metrics.js";
import type { RequestContext } from "../../shared/request-context.js";
import { type TraceContext, traceContextOf } from "../../shared/trace-context.js";
import type { RpcSystem } from "../../shared/tracing/call-record.js";
import { endRpcSpan, startAttemptSpan } from "../../shared/tracing/rpc-spans.js";
import { pickLeastRequest } from "./balancer.js";
import { Endpoint } from "./endpoint.js";
import { createEndpointPool, type PoolConfig, readUpstreamTls } from "./endpoint-pool.js";
import { type Resolve, resolveAll, watchEndpointSet } from "./endpoint-set.js";
import { checkHealth, watchHealth } from "./health-watcher.js";
import { type OutlierConfig, OutlierDetector } from "./outlier-detector.js";
import { RetryBudget } from "./retry-budget.js";
import { attemptFailureOf, fromUpstreamFailure } from "./upstream-errors.js";

export interface UpstreamConfig {
  /** API_URL's URLs. */
  readonly urls: readonly string[];
  readonly resolveIntervalMs: number;
  /** How often an endpoint whose health stream cannot connect is tried again; 0: no active health. */
  readonly healthIntervalMs: number;
  readonly pool: PoolConfig;
  readonly outliers: OutlierConfig;
  /** Extra attempts in flight at most, in percent of the calls in flight. */
  readonly retryBudgetPercent: number;
}

/** One logical call to the API server, as the upstream sees it. */
export interface UpstreamCall {
  readonly labels: MethodLabels;
  /** The protocol its attempts travel in, as its spans name it. */
  readonly system: RpcSystem;
  /**
   * Whether repeating the call after it may have reached the application is
   * safe: the schema says NO_SIDE_EFFECTS or IDEMPOTENT, or it carries its
   * idempotency key. Asked only when a retry is considered.
   */
  safeToRepeat(): boolean;
  /** The caller is retrying already (grpc-previous-rpc-attempts): only retries that cost nothing here. */
  readonly callerRetrying: boolean;
  readonly rc: RequestContext;
  /** Aborted when the call is over for its caller: gone, or out of time. */
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Why the caller's side ended, once it has (canceled, or its own deadline). */
  callerEnded(): unknown;
}

/** What one attempt got from an endpoint: an answer, which may be an error the API server sent. */
export interface AttemptAnswer<T> {
  readonly value: T;
  readonly error?: ConnectError | undefined;
}

/**
 * How a call ended: the answer of its last attempt (an error in it is the API
 * server's, passed on as it came), or the gateway's own canonical error, with
 * how many attempts it took.
 */
export type UpstreamResult<T> = { readonly attempts: number } & (
  | (AttemptAnswer<T> & { readonly own?: undefined })
  | { readonly own: ConnectError; readonly value?: undefined; readonly error?: undefined }
);

/**
 * The API servers, seen from the gateway (Envoy's cluster): the endpoints
 * (endpoint-set), a pool of connections to each (endpoint-pool), active health
 * (health-watcher), passive health (outlier-detector), a least-request
 * balancer, and retries within a budget.
 */
export interface Upstream {
  /**
   * Runs one call: each attempt on an endpoint the balancer picks, another one
   * again when the attempt provably never reached the application (refused,
   * REFUSED_STREAM), or, for a call that is safe to repeat, when its
   * connection was lost or the API server answered `unavailable`; never past
   * the caller's deadline, never beyond the retry budget. Each attempt is a
   * CLIENT span of the call's trace (when it is traced); `trace` is the
   * attempt's place in it, which its `traceparent` must carry.
   */
  run<T>(call: UpstreamCall, attempt: AttemptFn<T>): Promise<UpstreamResult<T>>;
  /** Whether some endpoint may take calls now (the gateway's readiness). */
  hasUsableEndpoint(): boolean;
  /** Called whenever that may have changed. */
  onUsabilityChange(listener: () => void): void;
  readonly endpoints: readonly Endpoint[];
  close(): void;
}

/** Makes one attempt on an endpoint; `trace`: the attempt's position, for the `traceparent` it sends. */
export type AttemptFn<T> = (endpoint: Endpoint, trace: TraceContext) => Promise<AttemptAnswer<T>>;

/** Attempts of one call at most, first included. */
const MAX_ATTEMPTS = 3;
/** RetryInfo of a call no endpoint could take, when no probe is due sooner. */
const NO_ENDPOINT_RETRY_MS = 1_000;

export async function startUpstream(
  config: UpstreamConfig,
  log: Logger,
  metrics: RpcMetrics,
  upstreamMetrics: UpstreamMetrics,
  resolve: Resolve = resolveAll,
): Promise<Upstream> {
  const endpoints: Endpoint[] = [];
  const watchers = new Map<Endpoint, { stop(): void }>();
  const listeners: (() => void)[] = [];
  const changed = (endpoint: Endpoint): void => {
    upstreamMetrics.endpointUsable(endpoint.address, endpoint.usable);
    // Kept-alive connections to an endpoint that is out would only fail the next call they carry.
    if (!endpoint.usable) endpoint.pool.closeIdle();
    for (const listener of listeners) listener();
  };
  const outliers = new OutlierDetector(config.outliers, () => endpoints, checkHealth, {
    ejected(endpoint, failures, probeEveryMs) {
      logmsg.EndpointEjected.emit(log, {
        endpoint: endpoint.address,
        consecutive_failures: failures,
        probe_every_ms: probeEveryMs,
      });
      upstreamMetrics.ejected(endpoint.address);
      changed(endpoint);
    },
    returned(endpoint, ejectedForMs) {
      logmsg.EndpointReturned.emit(log, { endpoint: endpoint.address, ejected_for_ms: ejectedForMs });
      changed(endpoint);
    },
  });
  const budget = new RetryBudget(config.retryBudgetPercent);
  const tlsOptions = await readUpstreamTls(config.pool.tls);

  const set = await watchEndpointSet(
    config.urls,
    config.resolveIntervalMs,
    {
      added(url) {
        const pool = createEndpointPool(url.origin, config.pool, { ...tlsOptions, ...serverNameOf(url) });
        const endpoint = new Endpoint(url, pool);
        endpoints.push(endpoint);
        logmsg.EndpointAdded.emit(log, { endpoint: endpoint.address });
        if (config.healthIntervalMs > 0) {
          watchers.set(
            endpoint,
            watchHealth(endpoint, config.healthIntervalMs, (e, health) => {
              logmsg.EndpointHealthChanged.emit(log, { endpoint: e.address, health });
              changed(e);
            }),
          );
        }
        changed(endpoint);
      },
      removed(url) {
        const endpoint = endpoints.find((e) => e.url === url.origin);
        if (endpoint === undefined) return;
        endpoint.removed = true;
        logmsg.EndpointRemoved.emit(log, { endpoint: endpoint.address, in_flight: endpoint.inFlight });
        changed(endpoint);
        retireWhenIdle(endpoint);
      },
      resolveFailed(host, err) {
        logmsg.EndpointResolveFailed.emit(log, { host, err });
      },
    },
    resolve,
  );

  /** A removed endpoint is closed once its calls are done: drained, not cut. */
  const retireWhenIdle = (endpoint: Endpoint): void => {
    if (endpoint.inFlight > 0) return;
    watchers.get(endpoint)?.stop();
    watchers.delete(endpoint);
    outliers.forget(endpoint);
    endpoint.pool.close();
    endpoints.splice(endpoints.indexOf(endpoint), 1);
    upstreamMetrics.endpointGone(endpoint.address);
  };

  const noEndpoint = (rc: RequestContext): ConnectError =>
    publicError(errorCatalog.NO_HEALTHY_UPSTREAM, rc, {
      params: { endpoints: String(endpoints.filter((e) => !e.removed).length) },
      retryDelayMs: outliers.nextProbeInMs() ?? NO_ENDPOINT_RETRY_MS,
    });

  return {
    endpoints,
    hasUsableEndpoint: () => endpoints.some((e) => e.usable),
    onUsabilityChange: (listener) => listeners.push(listener),
    async run<T>(call: UpstreamCall, attempt: AttemptFn<T>): Promise<UpstreamResult<T>> {
      const tried = new Set<Endpoint>();
      let last: UpstreamResult<T> | undefined;
      let lastFailure: string | undefined;
      budget.callStarted();
      try {
        for (let attempts = 1; ; attempts++) {
          const retry = attempts > 1;
          if (retry && !(await budget.acquire(call.signal))) return last as UpstreamResult<T>;
          const endpoint = pickLeastRequest(endpoints.filter((e) => e.usable && !tried.has(e)));
          if (endpoint === undefined) {
            if (retry) budget.retryEnded();
            return last ?? { attempts: attempts - 1, own: noEndpoint(call.rc) };
          }
          if (retry) upstreamMetrics.retried(call.labels, lastFailure ?? "");
          tried.add(endpoint);
          endpoint.inFlight++;
          call.rc.call?.attempted(endpoint.address);
          const span = attemptSpan(call, endpoint, attempts);
          const position = span === undefined ? call.rc.trace : traceContextOf(span.spanContext());
          const started = performance.now();
          let failure: ConnectError | undefined;
          let answer: AttemptAnswer<T> | undefined;
          try {
            answer = await attempt(endpoint, position);
          } catch (thrown) {
            failure = fromUpstreamFailure(thrown, call.rc, {
              timeoutMs: call.timeoutMs,
              callerEnded: call.callerEnded(),
            });
          } finally {
            endpoint.inFlight--;
            if (retry) budget.retryEnded();
            if (endpoint.removed) retireWhenIdle(endpoint);
          }
          const error = failure ?? answer?.error;
          const outcome: CallOutcome = {
            code: error?.code ?? "ok",
            errorType: error === undefined ? "" : (reasonOf(error) ?? ""),
          };
          metrics.clientCall(call.labels, outcome, (performance.now() - started) / 1000, endpoint, position);
          if (span !== undefined) endRpcSpan(span, "client", call.system, outcome);
          const kind = failure !== undefined ? attemptFailureOf(failure) : undefined;
          // Unavailable: the API server said so, or something in front of it (an HTTP 503).
          // Faults injected to test clients must not take an endpoint out.
          const answeredUnavailable =
            kind !== "not_sent" &&
            kind !== "lost" &&
            error?.code === Code.Unavailable &&
            reasonOf(error) !== "FAULT_INJECTED";
          if (kind === "not_sent" || kind === "lost" || answeredUnavailable) outliers.failure(endpoint);
          else outliers.success(endpoint);

          last = failure !== undefined ? { attempts, own: failure } : { attempts, ...(answer as AttemptAnswer<T>) };
          lastFailure = kind ?? (answeredUnavailable ? "unavailable" : undefined);
          // Another endpoint, when this one provably never saw the call, or when the
          // call is safe to repeat and was lost or refused by an unavailable server
          // (unless its caller is retrying it already: retries must not multiply).
          const worthAnother =
            kind === "not_sent" ||
            ((kind === "lost" || answeredUnavailable) && !call.callerRetrying && call.safeToRepeat());
          if (!worthAnother || attempts >= MAX_ATTEMPTS || call.signal.aborted) return last;
        }
      } finally {
        budget.callEnded();
      }
    },
    close() {
      set.stop();
      outliers.close();
      for (const watcher of watchers.values()) watcher.stop();
      for (const endpoint of endpoints) endpoint.pool.close();
    },
  };
}

/** The CLIENT span of one attempt, child of the call's SERVER span; none when the call is not traced. */
function attemptSpan(call: UpstreamCall, endpoint: Endpoint, attempt: number): Span | undefined {
  const observed = call.rc.call;
  if (observed?.tracer === undefined || observed.span === undefined) return undefined;
  const parent = trace.setSpan(context.active(), observed.span);
  return startAttemptSpan(observed.tracer, parent, call.system, call.labels, endpoint, attempt);
}

/**
 * An endpoint's certificate is for the host name API_URL gave (sent as SNI
 * and checked), not for the address it resolved to; an address given as such
 * is checked against the certificate's IP names, and never sent as SNI.
 */
function serverNameOf(url: URL): { servername?: string } {
  const hostname = new URL(url.searchParams.get("from") ?? url.origin).hostname;
  return isIP(hostname.replace(/^\[|\]$/g, "")) === 0 ? { servername: hostname } : {};
}
