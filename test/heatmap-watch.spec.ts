import { cellToParent, latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createInProcessEventBus } from "../src/adapters/events/in-process-event-bus.js";
import type { HeatmapReader } from "../src/domain/feed/heatmap-reader.js";
import { createHeatmapService } from "../src/domain/feed/heatmap-service.js";
import type { HeatmapUpdate } from "../src/domain/feed/heatmap-watch.js";
import { createPostService } from "../src/domain/post/post-service.js";
import { type Fixture, pgliteFixture } from "./helpers/storage-fixtures.js";

/** Posts in `n` distinct cells at resolution 4, far apart; each test has a latitude of its own. */
function cells(n: number, latitude: number): string[] {
  return Array.from({ length: n }, (_, i) => latLngToCell(latitude, -150 + i * 11, 9));
}

describe("live heatmaps on embedded PGlite (the domain's watches)", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await pgliteFixture();
  });
  afterAll(async () => f?.close());

  /** The services on f's storage, with the count queries counted (the reader is the real one). */
  function services() {
    const bus = createInProcessEventBus();
    let countQueries = 0;
    const reader: HeatmapReader = {
      countPerCell: (res, within) => f.storage.heatmap.countPerCell(res, within),
      countCells(res, cells) {
        countQueries++;
        return f.storage.heatmap.countCells(res, cells);
      },
    };
    return {
      posts: createPostService({ posts: f.storage.posts, events: bus }),
      heatmap: createHeatmapService(reader, bus),
      countQueries: () => countQueries,
    };
  }

  it("gives a watcher that does not read the latest count of each cell when it does: merged, never a queue", async () => {
    const { posts, heatmap } = services();
    const stop = new AbortController();
    const watch = heatmap.watch({ resolution: 4, within: "" }, stop.signal);
    const snapshot = (await watch.next()).value as HeatmapUpdate;
    expect(snapshot.snapshot).toBe(true);
    const places = cells(5, -50);
    // 50 changes while the watcher reads nothing.
    for (let round = 0; round < 10; round++) {
      for (const h3Index of places) await posts.create({ actorId: "slow", h3Index, text: "x", requestId: "" });
    }
    // Reading now: what was counted meanwhile comes merged, and the rest right after.
    const state = new Map<string, number>();
    const updates: HeatmapUpdate[] = [];
    while (state.size < 5 || [...state.values()].some((n) => n !== 10)) {
      const update = (await watch.next()).value as HeatmapUpdate;
      updates.push(update);
      for (const { cell, count } of update.cells) state.set(cell, count);
    }
    expect(updates.every((u) => !u.snapshot)).toBe(true);
    expect(updates.length).toBeLessThanOrEqual(2);
    expect([...state.keys()].sort()).toEqual(places.map((p) => cellToParent(p, 4)).sort());
    stop.abort();
    await expect(watch.next()).rejects.toThrow();
    expect(heatmap.openWatches()).toBe(0);
  });

  it("counts a change once for any number of watchers of the same heatmap, and only the changed cells", async () => {
    const { posts, heatmap, countQueries } = services();
    const stop = new AbortController();
    const watches = Array.from({ length: 100 }, () => heatmap.watch({ resolution: 3, within: "" }, stop.signal));
    for (const w of watches) await w.next();
    expect(heatmap.openWatches()).toBe(100);
    const [h3Index] = cells(1, 10) as [string];
    await posts.create({ actorId: "many", h3Index, text: "x", requestId: "" });
    const updates = await Promise.all(watches.map(async (w) => (await w.next()).value as HeatmapUpdate));
    expect(new Set(updates.map((u) => JSON.stringify(u.cells))).size).toBe(1);
    expect(updates[0]?.cells.map((c) => c.cell)).toEqual([cellToParent(h3Index, 3)]);
    expect(countQueries()).toBe(1);
    stop.abort();
    await Promise.allSettled(watches.map((w) => w.next()));
    expect(heatmap.openWatches()).toBe(0);
  });

  it("sends a cell whose last post was deleted with a count of 0, and ignores posts outside its area", async () => {
    const { posts, heatmap } = services();
    const [inside, outside] = cells(2, 40) as [string, string];
    const area = cellToParent(inside, 1);
    const stop = new AbortController();
    const watch = heatmap.watch({ resolution: 5, within: area }, stop.signal);
    await watch.next();
    await posts.create({ actorId: "area", h3Index: outside, text: "x", requestId: "" });
    const id = await posts.create({ actorId: "area", h3Index: inside, text: "x", requestId: "" });
    const added = (await watch.next()).value as HeatmapUpdate;
    expect(added.cells).toEqual([{ cell: cellToParent(inside, 5), count: 1 }]);
    await posts.delete("area", id);
    const emptied = (await watch.next()).value as HeatmapUpdate;
    expect(emptied.cells).toEqual([{ cell: cellToParent(inside, 5), count: 0 }]);
    stop.abort();
  });
});
