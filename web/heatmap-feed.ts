import type { Client } from "@connectrpc/connect";
import { resubscribing } from "../src/client/resubscribe.js";
import type { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";

/** Where the live heatmap stands: waiting for its first snapshot, up to date, reopening, or given up. */
export type FeedState = "connecting" | "live" | "reconnecting" | "stopped";

export interface FeedListener {
  /** The cells now known, post count by H3 index (empty cells are absent). */
  cells(counts: ReadonlyMap<string, number>): void;
  /** `error`: how the stream ended when it reconnects, or what stopped it. */
  state(state: FeedState, error?: unknown): void;
}

/**
 * The live heatmap at one resolution at a time, from WatchHeatmap: each
 * snapshot replaces the counts, each change after it sets or removes the cells
 * it names. The stream is opened again (resubscribing) whenever it ends for a
 * reason that passes; a snapshot after that means live again.
 */
export class HeatmapFeed {
  private current: AbortController | undefined;

  constructor(
    private readonly client: Client<typeof HeatmapService>,
    private readonly listener: FeedListener,
  ) {}

  /** Watches resolution `h3Res` from now on; the watch before it is canceled. */
  watch(h3Res: number): void {
    this.current?.abort();
    const watch = new AbortController();
    this.current = watch;
    void this.run(h3Res, watch.signal);
  }

  private async run(h3Res: number, signal: AbortSignal): Promise<void> {
    // Counts of the old resolution are not cells of this one: start empty.
    const counts = new Map<string, number>();
    this.listener.cells(counts);
    this.listener.state("connecting");
    const messages = resubscribing((s) => this.client.watchHeatmap({ h3Res }, { signal: s }), {
      signal,
      onResubscribe: (event) => this.listener.state("reconnecting", event.error),
    });
    try {
      for await (const message of messages) {
        if (signal.aborted) return;
        if (message.snapshot) counts.clear();
        for (const { h3Index, postCount } of message.cells) {
          if (postCount === 0) counts.delete(h3Index);
          else counts.set(h3Index, postCount);
        }
        if (message.snapshot) this.listener.state("live");
        this.listener.cells(counts);
      }
      // The server ended the stream without an error: there is nothing more to wait for.
      if (!signal.aborted) this.listener.state("stopped");
    } catch (err) {
      if (!signal.aborted) this.listener.state("stopped", err);
    }
  }
}
