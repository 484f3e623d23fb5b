import pg from "pg";
import type { SqlClient } from "./sql-client.js";

export interface PostgresOptions {
  readonly connectionString: string;
  readonly maxConnections: number;
  /** Waiting longer than this for a connection fails the call as unavailable. */
  readonly connectTimeoutMs: number;
}

/** A PostgreSQL server through a `pg` connection pool. */
export function openPostgres(options: PostgresOptions): SqlClient {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections,
    connectionTimeoutMillis: options.connectTimeoutMs,
  });
  // An idle client losing its connection emits on the pool; without a listener
  // that would crash the process. The next query reports the outage instead.
  pool.on("error", () => {});
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const result = await pool.query(sql, params as unknown[]);
      return { rows: result.rows as Row[] };
    },
    async exec(sql) {
      await pool.query(sql);
    },
    async close() {
      await pool.end();
    },
  };
}
