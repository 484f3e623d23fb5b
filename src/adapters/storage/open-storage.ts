import { join } from "node:path";
import type { HeatmapReader } from "../../domain/feed/heatmap-reader.js";
import type { PostRepository } from "../../domain/post/post-repository.js";
import { migrate } from "./migrations.js";
import { openPglite, type PgliteSettings } from "./pglite-client.js";
import { openPostgres } from "./postgres-client.js";
import type { SqlClient } from "./sql-client.js";
import { createSqlPostStore } from "./sql-post-store.js";
import { type DatabaseTarget, tracedSqlClient } from "./traced-sql-client.js";

export interface StorageConfig {
  /** PostgreSQL server; when absent, embedded PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** PGLITE_SETTINGS: memory against speed for embedded PGlite (pglite-client.ts); `small` when absent. */
  readonly pgliteSettings?: PgliteSettings;
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
}

export interface Storage {
  readonly posts: PostRepository;
  readonly heatmap: HeatmapReader;
  /** "pglite" or "postgres": which database serves, for the start-up log. */
  readonly kind: "pglite" | "postgres";
  /** Resolves when the database answers a trivial query; rejects with the driver's error. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the configured database and brings its schema up to date. */
export async function openStorage(config: StorageConfig): Promise<Storage> {
  const kind = config.databaseUrl === undefined ? "pglite" : "postgres";
  const db: SqlClient =
    config.databaseUrl === undefined
      ? await openPglite(join(config.dataDir, "pglite"), config.pgliteSettings)
      : openPostgres({
          connectionString: config.databaseUrl,
          maxConnections: config.maxConnections,
          connectTimeoutMs: config.connectTimeoutMs,
        });
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  // Each query a span of the call it serves, when that call is traced.
  const store = createSqlPostStore(tracedSqlClient(db, targetOf(config.databaseUrl)));
  return {
    posts: store,
    heatmap: store,
    kind,
    ping: async () => {
      await db.query("SELECT 1");
    },
    close: () => db.close(),
  };
}

/** The server a PostgreSQL URL names, for spans: host, port and database, never its user or password. */
function targetOf(databaseUrl: string | undefined): DatabaseTarget {
  if (databaseUrl === undefined) return {};
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  return {
    ...(url.hostname === "" ? {} : { host: url.hostname, port: Number(url.port || 5432) }),
    ...(name === "" ? {} : { name }),
  };
}
