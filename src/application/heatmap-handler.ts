import type { ServiceImpl } from "@connectrpc/connect";
import type { CellCount } from "../domain/feed/heatmap-reader.js";
import type { HeatmapService as DomainHeatmapService } from "../domain/feed/heatmap-service.js";
import type { HeatmapService } from "../gen/bazbii/feed/v1/heatmap_service_pb.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import { publicError } from "../shared/errors/public-error.js";
import { requestContextOf } from "../shared/request-context.js";

const cellsOf = (counts: readonly CellCount[]) =>
  counts.map(({ cell, count }) => ({ h3Index: cell, postCount: count }));

/**
 * bazbii.feed.v1.HeatmapService on the domain's heatmap service. Watches end
 * when the server begins to drain (`drainSignal`), with STREAM_DRAINED, so
 * that their clients watch again through a server that is staying.
 */
export function createHeatmapHandler(
  heatmap: DomainHeatmapService,
  drainSignal: AbortSignal,
): ServiceImpl<typeof HeatmapService> {
  return {
    async getHeatmap(req) {
      return { cells: cellsOf(await heatmap.heatmap({ resolution: req.h3Res, within: req.within })) };
    },
    async *watchHeatmap(req, ctx) {
      // Draining already: no snapshot, so the gateway tries another server at once.
      if (drainSignal.aborted) throw publicError(errorCatalog.STREAM_DRAINED, requestContextOf(ctx.values));
      const query = { resolution: req.h3Res, within: req.within };
      try {
        for await (const update of heatmap.watch(query, AbortSignal.any([ctx.signal, drainSignal]))) {
          yield { cells: cellsOf(update.cells), snapshot: update.snapshot };
        }
      } catch (err) {
        // Draining is the reason even when the server's shutdown then ended the call too.
        if (drainSignal.aborted) {
          throw publicError(errorCatalog.STREAM_DRAINED, requestContextOf(ctx.values), { cause: err });
        }
        throw err;
      }
    },
  };
}
