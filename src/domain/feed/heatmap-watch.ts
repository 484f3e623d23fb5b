import { setTimeout as sleep } from "node:timers/promises";
import { cellToParent } from "h3-js";
import type { EventFeed } from "../event-feed.js";
import { type H3Cell, type H3Resolution, resolutionOf } from "../h3-cell.js";
import { changedCellOf } from "../post/post-events.js";
import type { CellCount, HeatmapReader } from "./heatmap-reader.js";

/**
 * After a batch of changes was counted and offered, the next batch waits this
 * long: a lone change goes out at once, a flood as about ten messages a second
 * per watcher, each with every cell changed meanwhile, whatever the write rate.
 */
const MIN_REFRESH_INTERVAL_MS = 100;

/** One message of a watch: the whole heatmap, or the cells whose counts changed. */
export interface HeatmapUpdate {
  readonly cells: readonly CellCount[];
  readonly snapshot: boolean;
}

/** A heatmap query already checked: its resolution and area. */
export interface WatchedArea {
  readonly resolution: H3Resolution;
  readonly within: H3Cell | undefined;
}

export interface HeatmapWatches {
  /**
   * The heatmap of `area` now, then every change to it until `signal` aborts
   * (or the consumer stops). Changes a consumer has not taken yet are merged
   * per cell, so a slow one holds at most one count per cell, never a queue.
   */
  watch(area: WatchedArea, signal: AbortSignal): AsyncGenerator<HeatmapUpdate>;
  /** Watches open now. */
  open(): number;
}

/**
 * Live heatmaps. Watchers of the same resolution and area share a hub: one
 * subscription to the event feed and one count query per batch of changed
 * cells, however many watch. Each watcher holds only the latest count of each
 * cell it has not taken yet.
 *
 * A watcher subscribes before it reads its snapshot, so no change falls between
 * them; a change already in the snapshot is sent again, which is harmless:
 * the messages carry counts (state), not increments.
 */
export function createHeatmapWatches(reader: HeatmapReader, feed: EventFeed): HeatmapWatches {
  const hubs = new Map<string, Hub>();
  let open = 0;
  return {
    open: () => open,
    async *watch(area, signal) {
      const key = `${area.resolution}/${area.within ?? ""}`;
      let hub = hubs.get(key);
      if (hub === undefined) {
        hub = new Hub(area, reader, feed);
        hubs.set(key, hub);
      }
      const watcher = new Watcher();
      hub.watchers.add(watcher);
      open++;
      try {
        yield { cells: await reader.countPerCell(area.resolution, area.within), snapshot: true };
        for (;;) yield { cells: await watcher.next(signal), snapshot: false };
      } finally {
        open--;
        hub.watchers.delete(watcher);
        if (hub.watchers.size === 0) {
          hub.close();
          hubs.delete(key);
        }
      }
    },
  };
}

/** The changes one watcher has not taken yet: the latest count per cell. */
class Watcher {
  #changed = new Map<H3Cell, number>();
  #failure: unknown;
  #wake: (() => void) | undefined;

  offer(counts: readonly CellCount[]): void {
    for (const { cell, count } of counts) this.#changed.set(cell, count);
    this.#wake?.();
  }

  fail(err: unknown): void {
    this.#failure ??= err;
    this.#wake?.();
  }

  /** Waits for changes, and takes them all, ordered by cell. */
  async next(signal: AbortSignal): Promise<CellCount[]> {
    while (this.#changed.size === 0 && this.#failure === undefined) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          this.#wake = undefined;
          resolve();
        };
        this.#wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
    if (this.#failure !== undefined) throw this.#failure;
    const cells = [...this.#changed].sort(([a], [b]) => (a < b ? -1 : 1)).map(([cell, count]) => ({ cell, count }));
    this.#changed = new Map();
    return cells;
  }
}

/** The watchers of one resolution and area, and the one subscription they share. */
class Hub {
  readonly watchers = new Set<Watcher>();
  readonly #area: WatchedArea;
  readonly #reader: HeatmapReader;
  readonly #unsubscribe: () => void;
  #pending = new Set<H3Cell>();
  #refreshing = false;

  constructor(area: WatchedArea, reader: HeatmapReader, feed: EventFeed) {
    this.#area = area;
    this.#reader = reader;
    this.#unsubscribe = feed.subscribe((event) => {
      const postCell = changedCellOf(event);
      const cell = postCell === undefined ? undefined : this.#cellOf(postCell as H3Cell);
      if (cell === undefined) return;
      this.#pending.add(cell);
      void this.#refresh();
    });
  }

  close(): void {
    this.#unsubscribe();
    this.#pending.clear(); // nobody left to count for
  }

  /** The post's cell at the watched resolution, if the post counts in the watched area. */
  #cellOf(postCell: H3Cell): H3Cell | undefined {
    const { resolution, within } = this.#area;
    const postResolution = resolutionOf(postCell);
    if (postResolution < resolution) return undefined;
    if (within !== undefined) {
      const areaResolution = resolutionOf(within);
      if (postResolution < areaResolution || cellToParent(postCell, areaResolution) !== within) return undefined;
    }
    return cellToParent(postCell, resolution) as H3Cell;
  }

  /**
   * Counts the changed cells, one query for all that changed meanwhile, and
   * offers them to every watcher; then, after MIN_REFRESH_INTERVAL_MS, the
   * cells that changed in the meantime.
   */
  async #refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      while (this.#pending.size > 0) {
        const cells = [...this.#pending];
        this.#pending = new Set();
        const counts = await this.#reader.countCells(this.#area.resolution, cells);
        for (const watcher of this.watchers) watcher.offer(counts);
        await sleep(MIN_REFRESH_INTERVAL_MS);
      }
    } catch (err) {
      // Storage failed: every watcher's stream ends with it (unavailable), and its client watches again.
      for (const watcher of this.watchers) watcher.fail(err);
    } finally {
      this.#refreshing = false;
    }
  }
}
