import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { watchStorage } from "../src/servers/storage-readiness.js";
import { Readiness } from "../src/shared/health.js";
import { timeUntil } from "./helpers/load.js";
import { LogCapture } from "./helpers/log-capture.js";
import { TEST_DATABASE_URL } from "./helpers/postgres.js";
import { freePort } from "./helpers/process.js";

/**
 * The storage watch against a real PostgreSQL: each ping is a query on a
 * connection of its own, made to take as long as the test says (pg_sleep), or
 * sent to a port where nothing listens (refused), as a stopped database does.
 */
function scriptedDatabase() {
  const state = { sleepS: 0, url: TEST_DATABASE_URL, pings: 0 };
  return {
    state,
    storage: {
      async ping() {
        state.pings++;
        const client = new pg.Client({ connectionString: state.url });
        client.on("error", () => {});
        try {
          await client.connect();
          await client.query("SELECT pg_sleep($1)", [state.sleepS]);
        } finally {
          await client.end().catch(() => {});
        }
      },
    },
  };
}

const INTERVAL_MS = 200; // a ping taking longer than 200 ms is slow

describe("the API server's storage watch", () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  function watch(db: ReturnType<typeof scriptedDatabase>) {
    const readiness = new Readiness();
    readiness.started();
    const changes: boolean[] = [];
    readiness.on("change", (ready) => changes.push(ready));
    const logs = new LogCapture("api");
    stops.push(watchStorage(db.storage, INTERVAL_MS, readiness, logs.logger).stop);
    return { readiness, changes, logs };
  }

  it("keeps serving while the database is only busy, and says so after three slow answers in a row", async () => {
    const db = scriptedDatabase();
    db.state.sleepS = 0.35; // every ping slower than its 200 ms
    const { readiness, changes, logs } = watch(db);
    await timeUntil(async () => db.state.pings >= 3, 5_000);
    // Two slow pings (the third has just begun): busy, not down.
    expect(readiness.ready).toBe(true);
    await timeUntil(async () => !readiness.ready, 5_000);
    expect(db.state.pings).toBeGreaterThanOrEqual(3);
    expect(logs.withLogId("API_001")).toHaveLength(1);
    db.state.sleepS = 0;
    await timeUntil(async () => readiness.ready, 5_000);
    expect(changes).toEqual([false, true]);
    expect(logs.withLogId("API_002")).toHaveLength(1);
  });

  it("takes a busy spell that ends in time as serving throughout", async () => {
    const db = scriptedDatabase();
    db.state.sleepS = 0.35;
    const { readiness, changes } = watch(db);
    await timeUntil(async () => db.state.pings >= 2, 5_000);
    db.state.sleepS = 0;
    const fastFrom = db.state.pings;
    await timeUntil(async () => db.state.pings >= fastFrom + 3, 5_000);
    expect(readiness.ready).toBe(true);
    expect(changes).toEqual([]);
  });

  it("says not serving at the first refused ping, and serving again at the first answer", async () => {
    const db = scriptedDatabase();
    const { readiness, changes, logs } = watch(db);
    await timeUntil(async () => db.state.pings >= 1, 5_000);
    expect(readiness.ready).toBe(true);
    db.state.url = `postgres://postgres@127.0.0.1:${await freePort()}/test`; // nothing listens there
    const refusedFrom = db.state.pings;
    await timeUntil(async () => !readiness.ready, 5_000);
    expect(db.state.pings).toBe(refusedFrom + 1);
    db.state.url = TEST_DATABASE_URL;
    await timeUntil(async () => readiness.ready, 5_000);
    expect(changes).toEqual([false, true]);
    expect(logs.withLogId("API_001")).toHaveLength(1);
  });
});
