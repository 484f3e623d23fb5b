import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { reasonOf } from "../errors/public-error.js";
import { requestContextOf } from "../request-context.js";
import { whenEnded } from "../stream-end.js";
import type { CallOutcome, RpcMetrics } from "./rpc-metrics.js";

/**
 * Records every call that reaches the handlers: its duration, its canonical
 * code and its reason (a stream's when it ends), and streams open and
 * messages sent. Outermost, so it sees the error callers receive.
 */
export function createMetricsInterceptor(metrics: RpcMetrics): Interceptor {
  return (next) => async (req) => {
    const rc = requestContextOf(req.contextValues);
    const labels = { service: req.service.typeName, method: req.method.name };
    if (Number(req.header.get("grpc-previous-rpc-attempts") ?? 0) > 0) metrics.retryObserved(labels);
    const outcomeOf = (thrown: unknown): CallOutcome => {
      if (thrown === undefined) return { code: "ok", errorType: "" };
      const err = ConnectError.from(thrown);
      return { code: err.code, errorType: reasonOf(err) ?? "" };
    };
    const seconds = () => (performance.now() - rc.startedAt) / 1000;
    const record = (thrown: unknown): void => metrics.serverCall(labels, outcomeOf(thrown), seconds());
    try {
      const res = await next(req);
      if (!res.stream) {
        record(undefined);
        return res;
      }
      // A stream: recorded when it ends, with the code it ended with; open and sent counted meanwhile.
      metrics.streamOpened(labels);
      return whenEnded(res, {
        ended: (err) => metrics.streamClosed(labels, outcomeOf(err), seconds()),
        sent: () => metrics.streamMessageSent(labels),
        aborted: req.signal,
      });
    } catch (thrown) {
      record(thrown);
      throw thrown;
    }
  };
}
