import type { H3Cell, H3Resolution } from "../h3-cell.js";

export interface CellCount {
  readonly cell: H3Cell;
  readonly count: number;
}

/** Storage port: counts of not-deleted posts per cell. */
export interface HeatmapReader {
  /**
   * Counts posts per ancestor cell at `resolution`, ordered by cell. Posts
   * pinned at a coarser resolution have no cell there and are not counted.
   * With `within`, only posts inside that cell are counted.
   */
  countPerCell(resolution: H3Resolution, within: H3Cell | undefined): Promise<CellCount[]>;
  /** Counts posts in each of `cells` (all at `resolution`), 0 for an empty one, ordered by cell. */
  countCells(resolution: H3Resolution, cells: readonly H3Cell[]): Promise<CellCount[]>;
}
