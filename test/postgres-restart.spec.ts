import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { PrivatePostgres } from "./helpers/private-postgres.js";
import { type System, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

// A PostgreSQL server of this test's own, stopped and started under the API
// server: how soon calls through the gateway succeed again once it is back.

let pg: PrivatePostgres;
let system: System;
beforeAll(async () => {
  pg = await PrivatePostgres.start();
  system = await startSystem({
    api: { storage: { databaseUrl: pg.url, dataDir: "", maxConnections: 4, connectTimeoutMs: 1_000 } },
  });
}, 120_000);
afterAll(async () => {
  closeGrpcClients();
  await system?.close();
  await pg?.close();
});

const get = () => callWire("connect-json", system.gateway.url, UserPostService.method.get, { id: "x" });
/** Answered by the API server from its storage (not_found), not refused for the storage's sake. */
const served = async () => {
  const outcome = await get();
  return !outcome.ok && outcome.code === "not_found";
};

describe("PostgreSQL restarted under the API server", () => {
  it("fails calls as unavailable while it is down, and serves them again within 1 s of its return", async () => {
    expect(await served()).toBe(true);
    await pg.stopServer();
    // Down: unavailable (the storage's, or no API server to take it), never internal.
    const codeOf = async () => {
      const outcome = await get();
      return outcome.ok ? "ok" : outcome.code;
    };
    await expect.poll(codeOf, { timeout: 5_000 }).toBe("unavailable");
    await expect.poll(async () => (await fetch(`${system.api.url}/readyz`)).status, { timeout: 5_000 }).toBe(503);

    await pg.startServer();
    const back = performance.now();
    while (!(await served())) {
      if (performance.now() - back > 5_000) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(performance.now() - back).toBeLessThan(1_000);
  }, 60_000);
});
