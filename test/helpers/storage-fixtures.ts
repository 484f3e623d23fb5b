import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { createInProcessEventBus } from "../../src/adapters/events/in-process-event-bus.js";
import { openStorage, type Storage } from "../../src/adapters/storage/open-storage.js";
import { createHeatmapService, type HeatmapService } from "../../src/domain/feed/heatmap-service.js";
import { createPostService, type PostService } from "../../src/domain/post/post-service.js";
import { freshPostgresSchema } from "./postgres.js";

/**
 * Real storage (embedded PGlite in a temporary directory, or a fresh schema of
 * the test PostgreSQL) and the domain services on it, with events handed on in
 * process, as an API server without NATS does.
 */
export interface Fixture {
  storage: Storage;
  posts: PostService;
  heatmap: HeatmapService;
  close(): Promise<void>;
}

/** PGlite in `dataDir` (a copy of the tests' template database in a temporary one by default), with its small settings by default. */
export async function pgliteFixture(dataDir?: string, pgliteSettings?: "small" | "pglite"): Promise<Fixture> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "bazbii-storage-")));
  if (dataDir === undefined) await cp(inject("pgliteTemplate"), join(dir, "pglite"), { recursive: true });
  const storage = await openStorage({
    databaseUrl: undefined,
    dataDir: dir,
    ...(pgliteSettings === undefined ? {} : { pgliteSettings }),
    maxConnections: 1,
    connectTimeoutMs: 1000,
  });
  return fixture(storage, async () => {
    await storage.close();
    if (dataDir === undefined) await rm(dir, { recursive: true, force: true });
  });
}

export async function postgresFixture(): Promise<Fixture> {
  const schema = await freshPostgresSchema();
  const storage = await openStorage({
    databaseUrl: schema.url,
    dataDir: "unused",
    maxConnections: 8,
    connectTimeoutMs: 2000,
  });
  return fixture(storage, async () => {
    await storage.close();
    await schema.drop();
  });
}

function fixture(storage: Storage, close: () => Promise<void>): Fixture {
  const bus = createInProcessEventBus();
  return {
    storage,
    posts: createPostService({ posts: storage.posts, events: bus }),
    heatmap: createHeatmapService(storage.heatmap, bus),
    close,
  };
}
