import { once } from "node:events";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { freePort, runEntryPoint, runNpmScript } from "./helpers/process.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

// These run the built entry points (npm test builds first), as `npm start`,
// `npm run start:api`, `npm run start:gateway` and `npm run token` do.

const started = (line: Record<string, unknown>) => line.log_id === "SYS_001";
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "bazbii-processes-"));
  // Start from a migrated database: initdb would add seconds to each start.
  for (const name of ["separate", "both"]) {
    await cp(inject("pgliteTemplate"), join(dataDir, name, "pglite"), { recursive: true });
  }
});
afterAll(async () => {
  closeGrpcClients();
  await rm(dataDir, { recursive: true, force: true });
});

describe("start:api and start:gateway as separate processes", () => {
  it("serve, relay through a real hop, and stop with exit code 0 on SIGTERM", async () => {
    const [apiPort, gatewayPort] = [await freePort(), await freePort()];
    const api = runEntryPoint("start-api", { API_PORT: String(apiPort), DATA_DIR: join(dataDir, "separate") });
    await api.waitForLine(started);
    const gateway = runEntryPoint("start-gateway", {
      GATEWAY_PORT: String(gatewayPort),
      API_URL: `http://127.0.0.1:${apiPort}`,
    });
    await gateway.waitForLine(started);

    for (const port of [apiPort, gatewayPort])
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const ok = await callWire("grpc", `http://127.0.0.1:${gatewayPort}`, HeatmapService.method.getHeatmap, {
      h3Res: 4,
    });
    expect(ok).toMatchObject({ ok: true, response: { cells: [] } });
    const requestId = `process-${crypto.randomUUID()}`;
    const notFound = await callWire(
      "connect-json",
      `http://127.0.0.1:${gatewayPort}`,
      UserPostService.method.get,
      { id: "nope" },
      {
        headers: { "x-request-id": requestId },
      },
    );
    expect(notFound).toMatchObject({ ok: false, code: "not_found", httpStatus: 404 });

    // Both processes logged the failure under the same request id, one JSON line each.
    expect(await gateway.waitForLine((l) => l.request_id === requestId)).toMatchObject({
      log_id: "REQ_012",
      "service.name": "gateway",
    });
    expect(await api.waitForLine((l) => l.request_id === requestId)).toMatchObject({
      log_id: "REQ_003",
      "service.name": "api",
    });

    gateway.child.kill("SIGTERM");
    api.child.kill("SIGTERM");
    expect(await gateway.exited()).toBe(0);
    expect(await api.exited()).toBe(0);
    expect(gateway.lines.some((l) => l.log_id === "SYS_002")).toBe(true);
  });
});

describe("start (both servers in one process)", () => {
  it("runs on embedded defaults with only the ports changed", async () => {
    const [apiPort, gatewayPort] = [await freePort(), await freePort()];
    const both = runEntryPoint("start", {
      API_PORT: String(apiPort),
      GATEWAY_PORT: String(gatewayPort),
      API_URL: `http://127.0.0.1:${apiPort}`,
      DATA_DIR: join(dataDir, "both"),
    });
    await both.waitForLine((l) => started(l) && l["service.name"] === "gateway");
    expect((await fetch(`http://127.0.0.1:${gatewayPort}/healthz`)).status).toBe(200);
    both.child.kill("SIGTERM");
    expect(await both.exited()).toBe(0);
  });
});

describe("configuration errors", () => {
  it.each([
    ["a port that is not a number", { GATEWAY_PORT: "eighty" }, "GATEWAY_PORT"],
    [
      "the development JWT secret in production",
      { NODE_ENV: "production", INTERNAL_AUTH_SECRET: "s".repeat(40) },
      "AUTH_JWT_SECRET",
    ],
    ["the development internal secret in production", { NODE_ENV: "production" }, "INTERNAL_AUTH_SECRET"],
    ["an unknown upstream protocol", { UPSTREAM_PROTOCOL: "carrier-pigeon" }, "UPSTREAM_PROTOCOL"],
  ])("stop the gateway with exit code 1 and name the variable: %s", async (_name, env, variable) => {
    const gateway = runEntryPoint("start-gateway", env);
    expect(await gateway.exited()).toBe(1);
    expect(gateway.stderr()).toContain(variable);
    // Logged too, as the JSON line docs/log-ids.md promises.
    const line = gateway.lines.find((l) => l.log_id === "SYS_003");
    expect(line).toMatchObject({ level: "error", msg: "Server failed to start", "service.name": "gateway" });
    expect(JSON.stringify(line)).toContain(variable);
  });

  it("logs SYS_003 for a port that is taken, and exits 1", async () => {
    const port = await freePort();
    const holder = createServer().listen(port, "127.0.0.1");
    await once(holder, "listening");
    const gateway = runEntryPoint("start-gateway", { GATEWAY_PORT: String(port) });
    expect(await gateway.exited()).toBe(1);
    holder.close();
    expect(gateway.lines.find((l) => l.log_id === "SYS_003")).toMatchObject({ err: { code: "EADDRINUSE" } });
  });
});

describe("npm start, stopped by a signal sent to npm (the process the user started)", () => {
  it.each(["SIGTERM", "SIGINT"] as const)(
    "%s: the server logs SYS_002, npm exits 0, and nothing is left listening",
    async (signal) => {
      const [apiPort, gatewayPort] = [await freePort(), await freePort()];
      const npm = runNpmScript("start", {
        API_PORT: String(apiPort),
        GATEWAY_PORT: String(gatewayPort),
        API_URL: `http://127.0.0.1:${apiPort}`,
        DATA_DIR: join(dataDir, "both"),
      });
      await npm.waitForLine((l) => started(l) && l["service.name"] === "gateway", 60_000);
      npm.child.kill(signal);
      expect(await npm.exited()).toBe(0);
      expect(npm.lines.filter((l) => l.log_id === "SYS_002").map((l) => l["service.name"])).toEqual(["gateway", "api"]);
      const answer = await fetch(`http://127.0.0.1:${gatewayPort}/healthz`).catch(() => "refused");
      expect(answer).toBe("refused");
    },
    90_000,
  );
});

describe("token", () => {
  it("prints a development HS256 token whose subject is the actor", async () => {
    const token = runEntryPoint("token", {}, ["alice"]);
    expect(await token.exited()).toBe(0);
    const jwt = token.lines[0]?.text as string;
    expect(decodeJwt(jwt)).toMatchObject({ sub: "alice" });
  });

  it("prints its usage for --help, and mints nothing for an option-looking actor", async () => {
    const help = runEntryPoint("token", {}, ["--help"]);
    expect(await help.exited()).toBe(0);
    expect(help.lines[0]?.text).toMatch(/^usage: npm run token -- <actor-id>/);
    const mistyped = runEntryPoint("token", {}, ["--actor"]);
    expect(await mistyped.exited()).toBe(2);
    expect(mistyped.lines).toEqual([]);
  });
});

describe("SIGTERM during a slow call", () => {
  it("stops being ready at once while still alive and serving, lets the call finish, then exits 0", async () => {
    const [apiPort, gatewayPort] = [await freePort(), await freePort()];
    const api = runEntryPoint("start-api", {
      API_PORT: String(apiPort),
      DATA_DIR: join(dataDir, "separate"),
      FAULT_INJECTION: "true",
    });
    await api.waitForLine(started);
    const gateway = runEntryPoint("start-gateway", {
      GATEWAY_PORT: String(gatewayPort),
      API_URL: `http://127.0.0.1:${apiPort}`,
      FAULT_INJECTION: "true",
    });
    await gateway.waitForLine(started);
    const url = `http://127.0.0.1:${gatewayPort}`;
    const slow = callWire(
      "connect-json",
      url,
      HeatmapService.method.getHeatmap,
      { h3Res: 3 },
      {
        headers: { "x-bazbii-fault-delay-ms": "1500", "x-request-id": "slow-call" },
      },
    );
    // The call is in the API server (its delay has begun) when the gateway is told to stop.
    await new Promise((resolve) => setTimeout(resolve, 300));
    gateway.child.kill("SIGTERM");
    await gateway.waitForLine((l) => l.log_id === "SYS_004");
    // Draining: not ready (load balancers move away), alive, and still serving whoever comes.
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await callWire("connect-json", url, HeatmapService.method.getHeatmap, { h3Res: 2 })).toMatchObject({
      ok: true,
    });
    expect(await slow).toMatchObject({ ok: true });
    expect(await gateway.exited()).toBe(0);
    api.child.kill("SIGTERM");
    expect(await api.exited()).toBe(0);
  });
});
