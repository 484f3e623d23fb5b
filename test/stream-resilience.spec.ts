import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { cellToParent, latLngToCell } from "h3-js";
import { describe, expect, inject, it, onTestFinished } from "vitest";
import { createNodeClient } from "../src/client/node.js";
import { resubscribing } from "../src/client/resubscribe.js";
import { DEVELOPMENT_JWT_SECRET } from "../src/config/gateway-config.js";
import { mintToken } from "../src/gateway/auth.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { metricValue, timeUntil } from "./helpers/load.js";
import { freshPostgresSchema } from "./helpers/postgres.js";
import { freePort, npmScriptNodeFlags, type RunningProcess, runEntryPoint } from "./helpers/process.js";
import { startApi, startGatewayFor } from "./helpers/system.js";

const NATS = { url: "nats://127.0.0.1:4222", maxReconnectAttempts: -1 };

/** A watcher as an application keeps one: the heatmap it has, rebuilt from each snapshot. */
function follow(baseUrl: string, protocol: "connect" | "grpc", h3Res: number, stop: AbortSignal) {
  const client = createNodeClient(HeatmapService, { baseUrl, protocol, httpVersion: "2" });
  const counts = new Map<string, number>();
  let snapshots = 0;
  let resubscribed = 0;
  const done = (async () => {
    const updates = resubscribing((signal) => client.watchHeatmap({ h3Res }, { signal }), {
      signal: stop,
      onResubscribe: () => resubscribed++,
    });
    for await (const update of updates) {
      if (update.snapshot) {
        counts.clear();
        snapshots++;
      }
      for (const { h3Index, postCount } of update.cells) {
        if (postCount === 0) counts.delete(h3Index);
        else counts.set(h3Index, postCount);
      }
    }
  })().catch((err: unknown) => {
    if (!stop.aborted) throw err;
  });
  return { counts, done, snapshots: () => snapshots, resubscribed: () => resubscribed };
}

const asText = (counts: ReadonlyMap<string, number>) =>
  JSON.stringify([...counts].sort(([a], [b]) => (a < b ? -1 : 1)));

describe("watches across a rolling restart of the API servers (PostgreSQL, NATS)", () => {
  it("every watcher resumes, through the client library, and ends with the right counts", async () => {
    const schema = await freshPostgresSchema();
    const ports = [await freePort(), await freePort()];
    const startAt = (port: number) =>
      startApi({ database: "postgres", databaseUrl: schema.url, api: { nats: NATS, port, shutdownDrainMs: 300 } });
    const apis = [await startAt(ports[0] as number), await startAt(ports[1] as number)];
    const { gateway, token } = await startGatewayFor(ports.map((p) => `http://127.0.0.1:${p}`).join(","), {
      streamLimits: { maxStreams: 1000, maxStreamsPerCaller: 1000 },
      upstream: { healthIntervalMs: 100 },
      rateLimit: { windowSeconds: 60, reads: 100_000, writes: 100_000, redisUrl: undefined, redisKeyPrefix: "roll" },
    });
    const stop = new AbortController();
    const watchers = Array.from({ length: 20 }, (_, i) =>
      follow(gateway.url, i % 2 ? "grpc" : "connect", 2, stop.signal),
    );
    try {
      await timeUntil(async () => watchers.every((w) => w.snapshots() > 0), 3_000);
      // Posts made and deleted throughout, through the retrying client.
      const posts = createNodeClient(UserPostService, { baseUrl: gateway.url, protocol: "connect" });
      const headers = { authorization: `Bearer ${await token("restarter")}` };
      let writing = true;
      const writes = (async () => {
        while (writing) {
          const h3Index = latLngToCell(-60 + Math.random() * 120, -170 + Math.random() * 340, 9);
          const options = { headers, timeoutMs: 5_000 };
          const { id } = await posts.create({ h3Index, text: "roll", requestId: crypto.randomUUID() }, options);
          if (Math.random() < 0.3) await posts.delete({ id }, options);
        }
      })();
      for (const [i, port] of ports.entries()) {
        const old = apis[i] as Awaited<ReturnType<typeof startAt>>;
        // As SIGTERM does (run.ts): drain (its streams end with STREAM_DRAINED), serve on for the drain period, close.
        old.api.drain();
        await sleep(old.api.drainMs);
        await old.api.close();
        await old.cleanup();
        apis[i] = await startAt(port);
        await timeUntil(
          async () =>
            (await metricValue(gateway.url, "bazbii_upstream_endpoint_healthy", `endpoint="127.0.0.1:${port}"`)) === 1,
          2_000,
        );
      }
      writing = false;
      await writes;
      const final = await createClient(
        HeatmapService,
        createConnectTransport({ baseUrl: gateway.url, httpVersion: "1.1" }),
      ).getHeatmap({ h3Res: 2 });
      const expected = new Map(final.cells.map((c) => [c.h3Index, c.postCount]));
      await timeUntil(async () => watchers.every((w) => asText(w.counts) === asText(expected)), 2_000);
      // Both servers restarted under them: each watcher had to watch again at least once.
      expect(watchers.map((w) => w.resubscribed() >= 1)).toEqual(watchers.map(() => true));
      expect(expected.size).toBeGreaterThan(0);
    } finally {
      stop.abort();
      await Promise.all(watchers.map((w) => w.done));
      await gateway.close(0);
      for (const api of apis) {
        await api.api.close(0);
        await api.cleanup();
      }
      await schema.drop();
    }
  });
});

/** A process's log lines above info, when a test must say why it failed. */
function warnings(p: RunningProcess): unknown[] {
  return p.lines.filter((l) => l.level === "warn" || l.level === "error" || l.level === "fatal").slice(0, 20);
}

/** Resident memory of a process, in MB. */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024);
}

describe("1,000 watchers of whom 100 never read (API server and gateway as processes)", () => {
  it("keeps both processes' memory bounded, and the readers get updates within 1 s", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "bazbii-watchers-"));
    await cp(inject("pgliteTemplate"), join(dataDir, "pglite"), { recursive: true });
    const [apiPort, gatewayPort] = [await freePort(), await freePort()];
    // As npm run start:api and start:gateway run them: with their Node flags.
    const api = runEntryPoint(
      "start-api",
      { NODE_ENV: "test", API_PORT: String(apiPort), DATA_DIR: dataDir },
      [],
      await npmScriptNodeFlags("api"),
    );
    const gateway = runEntryPoint(
      "start-gateway",
      {
        NODE_ENV: "test",
        GATEWAY_PORT: String(gatewayPort),
        API_URL: `http://127.0.0.1:${apiPort}`,
        MAX_STREAMS_PER_CALLER: "2000",
        RATE_LIMIT_READS: "100000",
        RATE_LIMIT_WRITES: "100000",
      },
      [],
      await npmScriptNodeFlags("gateway"),
    );
    // Stopped however the test ends, a timeout included.
    onTestFinished(async () => {
      api.child.kill("SIGTERM");
      gateway.child.kill("SIGTERM");
      await Promise.all([api.exited(), gateway.exited()]);
      await rm(dataDir, { recursive: true, force: true });
    });
    const baseUrl = `http://127.0.0.1:${gatewayPort}`;
    const stop = new AbortController();
    const stalled: http2.ClientHttp2Session[] = [];
    try {
      await api.waitForLine((l) => l.log_id === "SYS_001", 20_000);
      await gateway.waitForLine((l) => l.log_id === "SYS_001", 20_000);
      // As a load balancer would: the gateway gets calls once it is ready, i.e. once its health
      // watch has found the API server (which may have started listening after it first looked).
      await timeUntil(async () => (await fetch(`${baseUrl}/readyz`)).ok, 5_000);
      const pids = { api: api.child.pid as number, gateway: gateway.child.pid as number };

      // 100 watchers that never read, on 10 connections of their own.
      const body = Buffer.from(JSON.stringify({ h3Res: 4 }));
      const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
      for (let c = 0; c < 10; c++) {
        const session = http2.connect(baseUrl);
        stalled.push(session);
        for (let s = 0; s < 10; s++) {
          const stream = session.request({
            ":method": "POST",
            ":path": "/bazbii.feed.v1.HeatmapService/WatchHeatmap",
            "content-type": "application/connect+json",
          });
          stream.end(envelope);
          stream.pause(); // and never a read
        }
      }
      // 900 that read, 100 per connection; each remembers when it saw a post's cell change.
      const seen = new Map<string, number[]>();
      const readerErrors: unknown[] = [];
      let snapshots = 0;
      const transports = Array.from({ length: 9 }, () => createConnectTransport({ baseUrl, httpVersion: "2" }));
      const readers = Array.from({ length: 900 }, async (_, i) => {
        const client = createClient(HeatmapService, transports[i % 9] as (typeof transports)[number]);
        try {
          for await (const update of client.watchHeatmap({ h3Res: 4 }, { signal: stop.signal })) {
            if (update.snapshot) snapshots++;
            const now = performance.now();
            for (const cell of update.cells) {
              const times = seen.get(cell.h3Index) ?? [];
              times.push(now);
              seen.set(cell.h3Index, times);
            }
          }
        } catch (err) {
          if (!stop.signal.aborted) readerErrors.push(err);
        }
      });
      // A watch that ends early fails the test with what it was told, and what the servers logged above info.
      const explain = (what: string) =>
        `${what}; ${readerErrors.length} watches ended early, the first with ${String(readerErrors[0])}; ` +
        `API server warnings: ${JSON.stringify(warnings(api))}; gateway warnings: ${JSON.stringify(warnings(gateway))}`;
      await timeUntil(async () => snapshots === 900 || readerErrors.length > 0, 15_000).catch(() => {});
      expect(readerErrors, explain(`${snapshots} of 900 snapshots`)).toEqual([]);
      await timeUntil(
        async () => (await metricValue(`http://127.0.0.1:${apiPort}`, "bazbii_heatmap_watches_open", "")) === 1000,
        5_000,
      );
      const before = { api: await rssMb(pids.api), gateway: await rssMb(pids.gateway) };

      // Floods of changes, 50 posts at a time (one message of many cells each), which the 100
      // stalled watchers never take: their windows fill, and their watches on the API server
      // merge what they miss. Bounded memory: a second flood as large as the first adds
      // (next to) nothing to either process.
      const token = await mintToken(DEVELOPMENT_JWT_SECRET, "flood");
      const posts = createClient(UserPostService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      const headers = { authorization: `Bearer ${token}` };
      // A flood is meant to saturate: its calls get time enough.
      const create = (h3Index: string) =>
        posts.create({ h3Index, text: "flood", requestId: crypto.randomUUID() }, { headers, timeoutMs: 30_000 });
      const flood = async () => {
        for (let round = 0; round < 5; round++) {
          await Promise.all(
            Array.from({ length: 50 }, () =>
              create(latLngToCell(-80 + Math.random() * 160, -180 + Math.random() * 360, 9)),
            ),
          );
        }
        return { api: await rssMb(pids.api), gateway: await rssMb(pids.gateway) };
      };
      const afterFirst = await flood();
      const afterSecond = await flood();
      // The readers catch up with the floods (a marker post reaches all of them)...
      const marker = latLngToCell(85, 0, 9);
      await create(marker);
      await timeUntil(async () => (seen.get(cellToParent(marker, 4))?.length ?? 0) >= 900, 20_000);
      // ...then single posts in fresh cells: how long until every reader has each.
      const latencies: number[] = [];
      for (let probe = 0; probe < 10; probe++) {
        const h3Index = latLngToCell(-85 + probe * 0.01, 179.5, 9);
        const cell = cellToParent(h3Index, 4);
        const already = seen.get(cell)?.length ?? 0;
        const sent = performance.now();
        await create(h3Index);
        await timeUntil(async () => (seen.get(cell)?.length ?? 0) >= already + 900, 1_000);
        const times = (seen.get(cell) ?? []).slice(already);
        latencies.push(Math.max(...times) - sent);
      }
      latencies.sort((a, b) => a - b);
      // The figures, for the record: RSS with the watchers open, after each flood, and the slowest reader per probe.
      console.log(
        `1,000 watchers, 100 stalled: RSS api ${before.api} → ${afterFirst.api} → ${afterSecond.api} MB, ` +
          `gateway ${before.gateway} → ${afterFirst.gateway} → ${afterSecond.gateway} MB; every reader had each ` +
          `change within ${Math.round(latencies.at(-1) as number)} ms (median probe ${Math.round(latencies[5] as number)} ms)`,
      );
      expect(readerErrors, explain("after the floods")).toEqual([]);
      expect(latencies.at(-1)).toBeLessThan(1_000);
      expect(afterSecond.api - afterFirst.api).toBeLessThan(50);
      expect(afterSecond.gateway - afterFirst.gateway).toBeLessThan(50);
      stop.abort();
      await Promise.all(readers);
    } finally {
      stop.abort();
      for (const session of stalled) session.destroy();
    }
  }, 120_000);
});
