import { Gauge, type Registry } from "prom-client";

/** The API server's open heatmap watches (subscriptions to its event feed), read at each scrape. */
export function registerWatchMetrics(registry: Registry, openWatches: () => number): void {
  new Gauge({
    name: "bazbii_heatmap_watches_open",
    help: "Heatmap watches open on this API server: subscribers its domain events are handed to.",
    registers: [registry],
    collect() {
      this.set(openWatches());
    },
  });
}
