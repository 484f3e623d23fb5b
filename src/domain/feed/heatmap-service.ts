import { checkAll } from "../errors.js";
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

export interface HeatmapQuery {
  readonly resolution: number;
  /** An H3 cell limiting the area; empty for everywhere. */
  readonly within: string;
}

export interface HeatmapService {
  heatmap(query: HeatmapQuery): Promise<CellCount[]>;
}

export function createHeatmapService(reader: HeatmapReader): HeatmapService {
  return {
    async heatmap({ resolution, within }) {
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
      return reader.countPerCell(res, area);
    },
  };
}
