import type { ServiceImpl } from "@connectrpc/connect";
import type { HeatmapService as DomainHeatmapService } from "../domain/feed/heatmap-service.js";
import type { HeatmapService } from "../gen/bazbii/feed/v1/heatmap_service_pb.js";

/** bazbii.feed.v1.HeatmapService on the domain's heatmap service. */
export function createHeatmapHandler(heatmap: DomainHeatmapService): ServiceImpl<typeof HeatmapService> {
  return {
    async getHeatmap(req) {
      const counts = await heatmap.heatmap({ resolution: req.h3Res, within: req.within });
      return { cells: counts.map(({ cell, count }) => ({ h3Index: cell, postCount: count })) };
    },
  };
}
