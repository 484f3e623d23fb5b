import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { cellToParent, latLngToCell } from "h3-js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";

/** Watchers per HTTP/2 connection, as a few backends multiplexing many watches would hold them. */
const WATCHERS_PER_CONNECTION = 100;
const RESOLUTION = 4;

export interface FanOut {
  readonly watchers: number;
  readonly posts: number;
  /** From a Create's answer to a watcher's message with its cell, over every (post, watcher). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * Update fan-out: `watchers` WatchHeatmap streams through the gateway, then
 * `posts` posts created one at a time, each in a cell of its own; for every
 * post and watcher, the time from the Create's answer to the watcher's message
 * holding that cell.
 */
export async function measureFanOut(baseUrl: string, token: string, watchers = 1_000, posts = 20): Promise<FanOut> {
  const stop = new AbortController();
  const arrived = new Map<string, number[]>();
  let snapshots = 0;
  const transports = Array.from({ length: Math.ceil(watchers / WATCHERS_PER_CONNECTION) }, () =>
    createConnectTransport({ baseUrl, httpVersion: "2" }),
  );
  const streams = Array.from({ length: watchers }, async (_, i) => {
    const client = createClient(HeatmapService, transports[i % transports.length] as (typeof transports)[number]);
    try {
      for await (const update of client.watchHeatmap({ h3Res: RESOLUTION }, { signal: stop.signal })) {
        if (update.snapshot) snapshots++;
        const now = performance.now();
        for (const cell of update.cells) arrived.get(cell.h3Index)?.push(now);
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    }
  });
  try {
    await until(() => snapshots === watchers, 30_000);
    const client = createClient(UserPostService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const latencies: number[] = [];
    for (let i = 0; i < posts; i++) {
      // A cell nobody else posts in: its first message is this post's.
      const h3Index = latLngToCell(-89 + i * 0.5, 179.9, 9);
      const cell = cellToParent(h3Index, RESOLUTION);
      arrived.set(cell, []);
      await client.create(
        { h3Index, text: "fan-out", requestId: crypto.randomUUID() },
        { headers: { authorization: `Bearer ${token}` } },
      );
      const answered = performance.now();
      await until(() => (arrived.get(cell)?.length ?? 0) >= watchers, 10_000);
      for (const at of arrived.get(cell) ?? []) latencies.push(Math.max(0, at - answered));
    }
    latencies.sort((a, b) => a - b);
    const q = (p: number) =>
      Math.round((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0) * 10) / 10;
    return { watchers, posts, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: q(1) };
  } finally {
    stop.abort();
    await Promise.allSettled(streams);
  }
}

async function until(done: () => boolean, withinMs: number): Promise<void> {
  const started = performance.now();
  while (!done()) {
    if (performance.now() - started > withinMs) throw new Error(`fan-out: not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
