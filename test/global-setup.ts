import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { openStorage } from "../src/adapters/storage/open-storage.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A migrated PGlite data directory to copy: initdb costs seconds, a copy under one. */
    pgliteTemplate: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(join(tmpdir(), "bazbii-template-"));
  const storage = await openStorage({ databaseUrl: undefined, dataDir, maxConnections: 1, connectTimeoutMs: 1000 });
  await storage.close();
  project.provide("pgliteTemplate", join(dataDir, "pglite"));
  return () => rm(dataDir, { recursive: true, force: true });
}
