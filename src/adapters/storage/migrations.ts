import type { SqlClient } from "./sql-client.js";

/**
 * Schema changes, in order, applied once each. Append only: a migration that
 * shipped is never edited.
 */
const migrations: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE posts (
        id          text PRIMARY KEY,
        actor_id    text NOT NULL,
        h3_index    text NOT NULL,
        text        text NOT NULL,
        request_id  text,
        create_time timestamptz NOT NULL,
        delete_time timestamptz,
        -- ancestors[r + 1] = the post's cell's parent at resolution r (h3-js cellToParent),
        -- for r = 0 .. the cell's resolution: a heatmap is one GROUP BY at any resolution.
        ancestors   text[] NOT NULL,
        -- Create is idempotent per (actor, request_id); NULL request ids never collide.
        CONSTRAINT posts_actor_request_id_key UNIQUE (actor_id, request_id)
      );
    `,
  },
];

/** An arbitrary, fixed key: replicas starting together take turns migrating. */
const MIGRATION_LOCK_KEY = 4_242_003;

/** Brings the schema up to date in one transaction, under an advisory lock. */
export async function migrate(db: SqlClient): Promise<void> {
  const steps = migrations
    .map(
      ({ version, sql }) => `
        DO $migration$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ${version}) THEN
            ${sql}
            INSERT INTO schema_migrations (version) VALUES (${version});
          END IF;
        END $migration$;`,
    )
    .join("\n");
  await db.exec(`
    BEGIN;
    SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY});
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    );
    ${steps}
    COMMIT;
  `);
}
