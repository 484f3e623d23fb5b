import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { reasonOf } from "../errors/public-error.js";
import { requestContextOf } from "../request-context.js";
import type { RpcMetrics } from "./rpc-metrics.js";

/**
 * Records every call that reaches the handlers: its duration, its canonical
 * code and its reason. Outermost, so it sees the error callers receive.
 */
export function createMetricsInterceptor(metrics: RpcMetrics): Interceptor {
  return (next) => async (req) => {
    const rc = requestContextOf(req.contextValues);
    const labels = { service: req.service.typeName, method: req.method.name };
    if (Number(req.header.get("grpc-previous-rpc-attempts") ?? 0) > 0) metrics.retryObserved(labels);
    try {
      const res = await next(req);
      metrics.serverCall(labels, { code: "ok", errorType: "" }, (performance.now() - rc.startedAt) / 1000);
      return res;
    } catch (thrown) {
      const err = ConnectError.from(thrown);
      metrics.serverCall(
        labels,
        { code: err.code, errorType: reasonOf(err) ?? "" },
        (performance.now() - rc.startedAt) / 1000,
      );
      throw thrown;
    }
  };
}
