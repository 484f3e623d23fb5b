import { type Attributes, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { startChildSpan } from "../../shared/tracing/call-record.js";
import type { SqlClient } from "./sql-client.js";

/** Where the database is, as database spans name it (a server's address; nothing for embedded PGlite). */
export interface DatabaseTarget {
  /** db.namespace: the database's name. */
  readonly name?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
}

/**
 * The SQL client, each query a CLIENT span of the call it serves
 * (OpenTelemetry's database conventions: `SELECT posts`, db.system.name
 * postgresql, db.operation.name, db.collection.name and db.query.text). The
 * text is the statement with its `$n` placeholders, which the conventions
 * collect by default: the values (a post's text, ids) are never in it.
 * Queries outside a traced call (readiness checks, migrations) make no span,
 * and cost a context lookup.
 */
export function tracedSqlClient(db: SqlClient, target: DatabaseTarget): SqlClient {
  const base: Attributes = {
    "db.system.name": "postgresql",
    ...(target.name === undefined ? {} : { "db.namespace": target.name }),
    ...(target.host === undefined ? {} : { "server.address": target.host }),
    ...(target.port === undefined ? {} : { "server.port": target.port }),
  };
  return {
    async query<Row>(sql: string, params?: readonly unknown[]) {
      const span = startChildSpan(() => {
        const { operation, collection } = summaryOf(sql);
        return {
          name: collection === undefined ? operation : `${operation} ${collection}`,
          kind: SpanKind.CLIENT,
          attributes: {
            ...base,
            "db.operation.name": operation,
            ...(collection === undefined ? {} : { "db.collection.name": collection }),
            "db.query.text": sql.replace(/\s+/g, " ").trim(),
          },
        };
      });
      if (span === undefined) return db.query<Row>(sql, params);
      try {
        const result = await db.query<Row>(sql, params);
        span.setAttribute("db.response.returned_rows", result.rows.length);
        return result;
      } catch (err) {
        const code = err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
        // The SQLSTATE (or the driver's error name), never the message: it may quote the values.
        span.setAttribute("error.type", code ?? (err instanceof Error ? err.name : "Error"));
        if (code !== undefined) span.setAttribute("db.response.status_code", code);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    },
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
  };
}

/** The statement's operation and the table it works on, e.g. SELECT and posts, for the span's low-cardinality name. */
function summaryOf(sql: string): { operation: string; collection: string | undefined } {
  const operation = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? "QUERY";
  const collection = /\b(?:FROM|INTO|UPDATE)\s+([A-Za-z_][\w.]*)/i.exec(sql)?.[1];
  return { operation, collection };
}
