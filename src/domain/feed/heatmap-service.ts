import { checkAll } from "../errors.js";
import type { EventFeed } from "../event-feed.js";
import {
  type H3Cell,
  type H3Resolution,
  isH3Resolution,
  MAX_H3_RESOLUTION,
  MIN_H3_RESOLUTION,
  parseH3Cell,
} from "../h3-cell.js";
import { ErrInvalidAreaCell, ErrInvalidH3Resolution } from "./heatmap-errors.js";
import type { CellCount, HeatmapReader } from "./heatmap-reader.js";
import { createHeatmapWatches, type HeatmapUpdate, type WatchedArea } from "./heatmap-watch.js";

export interface HeatmapQuery {
  readonly resolution: number;
  /** An H3 cell limiting the area; empty for everywhere. */
  readonly within: string;
}

export interface HeatmapService {
  heatmap(query: HeatmapQuery): Promise<CellCount[]>;
  /** The same heatmap live: a snapshot, then its changes (heatmap-watch.ts), until `signal` aborts. */
  watch(query: HeatmapQuery, signal: AbortSignal): AsyncGenerator<HeatmapUpdate>;
  /** Watches open now. */
  openWatches(): number;
}

export function createHeatmapService(reader: HeatmapReader, feed: EventFeed): HeatmapService {
  const watches = createHeatmapWatches(reader, feed);
  return {
    async heatmap(query) {
      const { resolution, within } = checkQuery(query);
      return reader.countPerCell(resolution, within);
    },
    watch: (query, signal) => watches.watch(checkQuery(query), signal),
    openWatches: () => watches.open(),
  };
}

/** The query's resolution and area, or every violation of them as one error. */
function checkQuery({ resolution, within }: HeatmapQuery): WatchedArea {
  const [res, area] = checkAll([
    (): H3Resolution => {
      if (isH3Resolution(resolution)) return resolution;
      throw ErrInvalidH3Resolution.wrap(
        `h3_res must be between ${MIN_H3_RESOLUTION} and ${MAX_H3_RESOLUTION}, got ${resolution}`,
        { h3Res: String(resolution) },
      );
    },
    (): H3Cell | undefined => (within === "" ? undefined : parseH3Cell(within, ErrInvalidAreaCell)),
  ]);
  return { resolution: res, within: area };
}
