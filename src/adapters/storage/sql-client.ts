/**
 * The little this code base needs from a PostgreSQL connection, met alike by
 * embedded PGlite and by a `pg` pool, so both run the very same SQL.
 */
export interface SqlClient {
  /** One statement with `$n` parameters. */
  query<Row>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }>;
  /** Several statements, no parameters, one round trip (simple query protocol). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}
