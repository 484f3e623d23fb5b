import { ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace";
import { Counter, type Registry } from "prom-client";
import { logmsg } from "../logging/log-catalog.js";
import type { Logger } from "../logging/logger.js";

/**
 * The exporter, watched: a collector that is down, slow or refusing costs
 * the spans of the batches it did not take, and says so once — one warning
 * (SYS_007) when exports begin to fail, one line (SYS_008) when they work
 * again, with how many were lost in between — never a line per call or per
 * batch. `bazbii_trace_export_failures_total` counts the batches lost, for
 * alerts. The OpenTelemetry SDK's own diagnostics stay off: they would write
 * a line per failed batch, outside the log format.
 */
export function watchExports(exporter: SpanExporter, log: Logger, registry: Registry, endpoint: string): SpanExporter {
  const failures = new Counter({
    name: "bazbii_trace_export_failures_total",
    help: "Batches of spans the trace exporter could not deliver (collector down, slow or refusing); their spans are lost.",
    registers: [registry],
  });
  let failing = false;
  let lostBatches = 0;
  let lostSpans = 0;
  return {
    export(spans: ReadableSpan[], done) {
      // A failure reported before export() returns was the exporter's own refusal to send
      // (its limit of exports in flight, reached while a slow collector holds the others):
      // its spans are lost and counted, but it says nothing of the collector, so it neither
      // opens a spell of failures nor, right after one ended, opens another (no flapping).
      let sending = false;
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS && !sending) {
          failures.inc();
          lostBatches++;
          lostSpans += spans.length;
        } else if (result.code === ExportResultCode.SUCCESS) {
          if (failing) {
            logmsg.TraceExportRecovered.emit(log, { endpoint, lost_batches: lostBatches, lost_spans: lostSpans });
            failing = false;
          }
        } else {
          failures.inc();
          if (!failing) {
            failing = true;
            lostBatches = 0;
            lostSpans = 0;
            // The error's own words only: an HTTP error carries the collector's answer, which is not ours to log.
            const err = result.error;
            logmsg.TraceExportFailing.emit(log, {
              endpoint,
              err: { type: err?.name ?? "Error", message: err?.message ?? "export failed" },
            });
          }
          lostBatches++;
          lostSpans += spans.length;
        }
        done(result);
      });
      sending = true;
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
