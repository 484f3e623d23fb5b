import { cp, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cellToParent, getResolution, gridDisk, latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { is } from "../src/domain/errors.js";
import { ErrRequestIdReused } from "../src/domain/post/post-errors.js";
import { type Fixture, pgliteFixture, postgresFixture } from "./helpers/storage-fixtures.js";

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

describe.each([
  ["embedded PGlite", () => pgliteFixture()],
  ["PostgreSQL at 127.0.0.1:5432", postgresFixture],
])("storage on %s", (_name, open) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await open();
  });
  afterAll(async () => {
    await f?.close();
  });

  it("counts posts per cell at every resolution 0..15 exactly as h3-js cellToParent does", async () => {
    const random = seededRandom(20261122);
    // Posts around two places, at every resolution, some deleted.
    const stored: string[] = [];
    for (let i = 0; i < 120; i++) {
      const [lat, lng] =
        i % 2 === 0 ? [35.68 + random() * 0.2, 139.69 + random() * 0.2] : [51.5 + random(), -0.12 + random()];
      const cell = latLngToCell(lat, lng, Math.floor(random() * 16));
      const id = await f.posts.create({ actorId: `actor-${i % 7}`, h3Index: cell, text: `post ${i}`, requestId: "" });
      if (i % 10 === 3) await f.posts.delete(`actor-${i % 7}`, id);
      else stored.push(cell);
    }
    for (let res = 0; res <= 15; res++) {
      const expected = new Map<string, number>();
      for (const cell of stored) {
        if (getResolution(cell) < res) continue; // no ancestor at a finer resolution
        const parent = cellToParent(cell, res);
        expected.set(parent, (expected.get(parent) ?? 0) + 1);
      }
      const counts = await f.heatmap.heatmap({ resolution: res, within: "" });
      // This test runs first on an empty store: the counts are exactly these, ordered by cell.
      const want = [...expected].sort(([a], [b]) => (a < b ? -1 : 1)).map(([cell, count]) => ({ cell, count }));
      expect(counts, `resolution ${res}`).toEqual(want);
    }
  });

  it("limits a heatmap to the posts inside `within`", async () => {
    const center = latLngToCell(-33.86, 151.2, 9);
    const inside = gridDisk(center, 1);
    for (const [i, cell] of inside.entries()) {
      await f.posts.create({ actorId: "sydney", h3Index: cell, text: `near ${i}`, requestId: "" });
    }
    const area = cellToParent(center, 5);
    const counts = await f.heatmap.heatmap({ resolution: 9, within: area });
    const expected = inside.filter((c) => cellToParent(c, 5) === area).sort();
    expect(counts.map((c) => c.cell)).toEqual(expected);
    expect(counts.every((c) => c.count === 1)).toBe(true);
  });

  it("stores one post for concurrent identical creates, and gives every caller its id", async () => {
    const request = {
      actorId: "racer",
      h3Index: latLngToCell(1, 2, 12),
      text: "only once",
      requestId: crypto.randomUUID(),
    };
    const ids = await Promise.all(Array.from({ length: 12 }, () => f.posts.create(request)));
    expect(new Set(ids).size).toBe(1);
    const counts = await f.heatmap.heatmap({ resolution: 12, within: request.h3Index });
    expect(counts).toEqual([{ cell: request.h3Index, count: 1 }]);
  });

  it("lets another actor use the same request_id, and refuses a reused one for a different post", async () => {
    const requestId = crypto.randomUUID();
    const cell = latLngToCell(3, 4, 8);
    const a = await f.posts.create({ actorId: "ann", h3Index: cell, text: "same", requestId });
    const b = await f.posts.create({ actorId: "ben", h3Index: cell, text: "same", requestId });
    expect(a).not.toBe(b);
    const reused = f.posts.create({ actorId: "ann", h3Index: cell, text: "different", requestId });
    await expect(reused).rejects.toSatisfy((err) => is(err, ErrRequestIdReused));
  });
});

describe("embedded PGlite", () => {
  it("keeps posts across a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bazbii-restart-"));
    await cp(inject("pgliteTemplate"), join(dir, "pglite"), { recursive: true });
    try {
      const first = await pgliteFixture(dir);
      const id = await first.posts.create({
        actorId: "keeper",
        h3Index: latLngToCell(10, 10, 7),
        text: "durable",
        requestId: "",
      });
      await first.close();
      const second = await pgliteFixture(dir);
      expect((await second.posts.get(id)).text).toBe("durable");
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("creates its database on a fresh directory with PGlite's own settings, which the small ones then read, and back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bazbii-settings-"));
    const post = (f: Fixture, text: string, lat: number) =>
      f.posts.create({ actorId: "a", h3Index: latLngToCell(lat, lat, 7), text, requestId: "" });
    try {
      const own = await pgliteFixture(dir, "pglite");
      const first = await post(own, "own", 20);
      await own.close();
      const small = await pgliteFixture(dir, "small");
      expect((await small.posts.get(first)).text).toBe("own");
      const second = await post(small, "small", 21);
      await small.close();
      const again = await pgliteFixture(dir, "pglite");
      expect((await again.posts.get(second)).text).toBe("small");
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("creates its database beside the data directory and moves it in whole, removing what an interrupted start left", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bazbii-initdb-"));
    // What a start killed during initdb leaves: the scratch cluster of a process that is gone.
    await mkdir(join(dir, "pglite.initdb-999999999", "base"), { recursive: true });
    try {
      const f = await pgliteFixture(dir);
      const id = await f.posts.create({ actorId: "b", h3Index: latLngToCell(5, 5, 7), text: "x", requestId: "" });
      expect((await f.posts.get(id)).text).toBe("x");
      await f.close();
      expect(await readdir(dir)).toEqual(["pglite"]);
      expect(await readdir(join(dir, "pglite"))).toContain("PG_VERSION");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
