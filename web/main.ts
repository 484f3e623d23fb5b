import { createWebClient } from "../src/client/web.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { showFeedState } from "./feed-state-view.js";
import { HeatmapFeed } from "./heatmap-feed.js";
import { labelPage, postCount, t } from "./labels.js";
import { renderLegend } from "./legend-view.js";
import { type CellCount, MapView } from "./map-view.js";
import { fieldErrors, showError, showRetry, showSuccess } from "./status-view.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// Same-origin calls to the gateway that serves this page, with the retry-aware client.
let attemptsOfLastCall = 0;
const retry = {
  onRetry: (e: Parameters<typeof showRetry>[0]) => {
    attemptsOfLastCall = e.attempt + 1;
    showRetry(e);
  },
};
const heatmap = createWebClient(HeatmapService, { baseUrl: window.location.origin, retry });
const posts = createWebClient(UserPostService, { baseUrl: window.location.origin, retry });

const map = new MapView($<HTMLElement>("map") as unknown as SVGSVGElement, { lat: 35.68, lng: 139.76, spanLat: 2 });
let counts: ReadonlyMap<string, number> = new Map();
let selected: string | undefined;
let token: string | undefined;

// The counts come from the live feed only: a post made here shows up as it does in every other page.
const feed = new HeatmapFeed(heatmap, {
  cells(now) {
    counts = now;
    render();
  },
  state(state, error) {
    showFeedState($("feed-state"), $("map"), state, error);
    // Ready for whoever waits on it (the tests) once the first watch has an outcome.
    if (state !== "connecting") document.body.dataset.ready = "true";
  },
});

function resolution(): number {
  return Number($<HTMLInputElement>("resolution").value);
}

function watchResolution(): void {
  $("resolution-value").textContent = String(resolution());
  feed.watch(resolution());
}

function cells(): CellCount[] {
  return [...counts].map(([h3Index, postCount]) => ({ h3Index, postCount }));
}

function render(): void {
  renderLegend($("legend"), map.render(cells(), selected));
  if (selected !== undefined) {
    $("selected-cell").textContent = t("selectedCell", { cell: selected, posts: postCount(counts.get(selected) ?? 0) });
  }
}

function select(cell: string): void {
  selected = cell;
  render();
}

function setSignedIn(actor: string | undefined): void {
  $("sign-in").hidden = actor !== undefined;
  $("signed-in").hidden = actor === undefined;
  $("actor-name").textContent = actor ?? "";
}

async function signIn(actor: string): Promise<void> {
  const res = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ actor }),
  });
  if (!res.ok) {
    showSuccess(t("signInFailed", { reason: (await res.text()).trim() }));
    return;
  }
  ({ token } = (await res.json()) as { token: string });
  setSignedIn(actor);
}

function clearFieldError(): void {
  const text = $<HTMLTextAreaElement>("text");
  text.removeAttribute("aria-invalid");
  $("text-error").hidden = true;
}

async function createPost(): Promise<void> {
  clearFieldError();
  if (selected === undefined) select(map.cellAt(resolution()));
  const cell = selected as string;
  attemptsOfLastCall = 1;
  try {
    const { id } = await posts.create(
      { h3Index: cell, text: $<HTMLTextAreaElement>("text").value },
      token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
    );
    const retries = attemptsOfLastCall - 1;
    const attempt = attemptsOfLastCall;
    showSuccess(
      retries === 0 ? t("posted") : t(retries === 1 ? "postedAfterRetry" : "postedAfterRetries", { attempt, retries }),
    );
    $<HTMLTextAreaElement>("text").value = "";
    addPostItem(id, cell);
  } catch (err) {
    const problems = fieldErrors(err);
    const textProblem = problems.get("text") ?? problems.get("h3_index");
    if (textProblem !== undefined) {
      $<HTMLTextAreaElement>("text").setAttribute("aria-invalid", "true");
      $("text-error").textContent = textProblem;
      $("text-error").hidden = false;
    }
    showError(err);
  }
}

function addPostItem(id: string, cell: string): void {
  const li = document.createElement("li");
  li.dataset.postId = id;
  const view = document.createElement("button");
  view.type = "button";
  view.textContent = t("view", { cell });
  view.addEventListener("click", async () => {
    try {
      const { post } = await posts.get({ id });
      showSuccess(t("postShown", { text: post?.text ?? "", actor: post?.actorId ?? "", cell: post?.h3Index ?? "" }));
    } catch (err) {
      showError(err);
    }
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = t("delete");
  remove.addEventListener("click", async () => {
    try {
      await posts.delete({ id }, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
      li.remove();
      showSuccess(t("deleted"));
    } catch (err) {
      showError(err);
    }
  });
  li.append(view, " ", remove);
  $("posts").append(li);
}

function move(dLat: number, dLng: number, zoom = 1): void {
  const view = map.viewport;
  view.lat = Math.max(-80, Math.min(80, view.lat + dLat * view.spanLat));
  // Longitude wraps: panning east past 180° comes back at -180°.
  view.lng = ((((view.lng + dLng * view.spanLat + 180) % 360) + 360) % 360) - 180;
  view.spanLat = Math.max(0.005, Math.min(160, view.spanLat * zoom));
  render();
}

async function main(): Promise<void> {
  labelPage();
  const config = (await (await fetch("/config.json")).json()) as { devTokens: boolean };
  if (!config.devTokens) {
    $("sign-in").replaceChildren(document.createTextNode(t("signInNeedsProvider")));
  }
  $("sign-in").addEventListener("submit", (e) => {
    e.preventDefault();
    void signIn($<HTMLInputElement>("actor").value.trim());
  });
  $("sign-out").addEventListener("click", () => {
    token = undefined;
    setSignedIn(undefined);
  });
  $("resolution").addEventListener("input", watchResolution);
  // A click from the keyboard (detail 0) has no pointer position: it chooses the centre.
  $("map-button").addEventListener("click", (e) =>
    select(map.cellAt(resolution(), e.detail === 0 ? undefined : map.svgPoint(e))),
  );
  $("zoom-in").addEventListener("click", () => move(0, 0, 0.5));
  $("zoom-out").addEventListener("click", () => move(0, 0, 2));
  $("pan-west").addEventListener("click", () => move(0, -0.25));
  $("pan-east").addEventListener("click", () => move(0, 0.25));
  $("pan-north").addEventListener("click", () => move(0.25, 0));
  $("pan-south").addEventListener("click", () => move(-0.25, 0));
  $("post-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void createPost();
  });
  render();
  watchResolution();
}

void main();
