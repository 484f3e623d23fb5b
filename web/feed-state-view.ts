import type { FeedState } from "./heatmap-feed.js";
import { type LabelKey, t } from "./labels.js";
import { describeError, showError } from "./status-view.js";

const LABELS: Record<FeedState, LabelKey> = {
  connecting: "feedConnecting",
  live: "feedLive",
  reconnecting: "feedReconnecting",
  stopped: "feedStopped",
};

/**
 * Says whether the map is live. While it is not, the map keeps the last counts
 * dimmed (they may be stale); the badge's tooltip says why the stream ended,
 * and a watch that stopped for good shows its error like any failed call.
 */
export function showFeedState(badge: HTMLElement, map: Element, state: FeedState, error?: unknown): void {
  badge.dataset.state = state;
  badge.textContent = t(LABELS[state]);
  map.classList.toggle("stale", state === "reconnecting" || state === "stopped");
  if (error === undefined) badge.removeAttribute("title");
  else badge.title = describeError(error).message;
  if (state === "stopped" && error !== undefined) showError(error);
}
