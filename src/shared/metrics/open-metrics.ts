import Negotiator from "negotiator";
import { type Metric, type OpenMetricsContentType, Registry } from "prom-client";

/** The formats a scrape can have, as Prometheus asks for them (its Accept names the versions). */
const PROMETHEUS_TEXT = "text/plain; version=0.0.4";
const OPENMETRICS_TEXT = "application/openmetrics-text; version=1.0.0";

/**
 * What a scrape asks for: OpenMetrics (with exemplars) when its Accept
 * prefers it, as Prometheus's does; Prometheus text otherwise, and when it
 * says nothing.
 */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  return new Negotiator({ headers: { accept } }).mediaType([PROMETHEUS_TEXT, OPENMETRICS_TEXT]) === OPENMETRICS_TEXT;
}

/**
 * The registry's metrics in the OpenMetrics text format, exemplars included.
 *
 * prom-client writes one format per registry, and its OpenMetrics writer
 * renames every counter in place (it drops `_total` from the metric's name
 * and adds it back to each sample), after which the Prometheus format would
 * write those counters without `_total`. So the process keeps its registry in
 * the Prometheus format, which alerts and dashboards are written against, and
 * this writes the same metrics through a registry of the other format,
 * handing it each counter under its family's name instead of the counter
 * itself.
 */
export async function openMetricsText(registry: Registry, defaultLabels: Record<string, string>): Promise<string> {
  const writer = new Registry<OpenMetricsContentType>();
  writer.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  writer.setDefaultLabels(defaultLabels);
  for (const metric of registry.getMetricsAsArray() as unknown as Metric<string>[]) {
    writer.registerMetric(isCounter(metric) ? familyOf(metric) : metric);
  }
  return writer.metrics();
}

export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;

type Readable = Metric<string> & { readonly type?: string; readonly name: string; get(): Promise<{ name: string }> };

function isCounter(metric: Metric<string>): boolean {
  return (metric as Readable).type === "counter";
}

/** A counter under its OpenMetrics family name (without `_total`), read from the counter itself. */
function familyOf(metric: Metric<string>): Metric<string> {
  const counter = metric as Readable;
  const name = counter.name.replace(/_total$/, "");
  return {
    type: "counter",
    name,
    get: async () => ({ ...(await counter.get()), name }),
  } as unknown as Metric<string>;
}
