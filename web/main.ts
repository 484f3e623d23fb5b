import { createWebClient } from "../src/client/web.js";
import { HeatmapService } from "../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { type CellCount, MapView, PALETTE } from "./map-view.js";
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
let cells: CellCount[] = [];
let selected: string | undefined;
let token: string | undefined;

function resolution(): number {
  return Number($<HTMLInputElement>("resolution").value);
}

async function refresh(): Promise<void> {
  $("resolution-value").textContent = String(resolution());
  try {
    ({ cells } = await heatmap.getHeatmap({ h3Res: resolution() }));
  } catch (err) {
    showError(err);
  }
  map.render(cells, selected);
  renderLegend();
}

function renderLegend(): void {
  const max = Math.max(0, ...cells.map((c) => c.postCount));
  const legend = $("legend");
  legend.replaceChildren(document.createTextNode(max === 0 ? "No posts in view yet." : "Posts per cell: 1 "));
  if (max === 0) return;
  for (const colour of PALETTE) {
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    legend.append(swatch);
  }
  legend.append(document.createTextNode(` ${max}`));
}

function select(cell: string): void {
  selected = cell;
  $("selected-cell").textContent = `${cell} (${cells.find((c) => c.h3Index === cell)?.postCount ?? 0} posts)`;
  map.render(cells, selected);
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
    showSuccess(`Sign-in failed: ${(await res.text()).trim()}`);
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
    showSuccess(
      retries === 0
        ? "Posted."
        : `Posted: succeeded on attempt ${attemptsOfLastCall} after ${retries} ${retries === 1 ? "retry" : "retries"}.`,
    );
    $<HTMLTextAreaElement>("text").value = "";
    addPostItem(id, cell);
    await refresh();
    select(cell);
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
  view.textContent = `View ${cell}`;
  view.addEventListener("click", async () => {
    try {
      const { post } = await posts.get({ id });
      showSuccess(`“${post?.text}” by ${post?.actorId} at ${post?.h3Index}`);
    } catch (err) {
      showError(err);
    }
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Delete";
  remove.addEventListener("click", async () => {
    try {
      await posts.delete({ id }, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
      li.remove();
      showSuccess("Deleted.");
      await refresh();
    } catch (err) {
      showError(err);
    }
  });
  li.append(view, " ", remove);
  $("posts").append(li);
}

function move(dLat: number, dLng: number, zoom = 1): void {
  map.viewport.lat = Math.max(-80, Math.min(80, map.viewport.lat + dLat * map.viewport.spanLat));
  map.viewport.lng += dLng * map.viewport.spanLat;
  map.viewport.spanLat = Math.max(0.005, Math.min(160, map.viewport.spanLat * zoom));
  map.render(cells, selected);
}

async function main(): Promise<void> {
  const config = (await (await fetch("/config.json")).json()) as { devTokens: boolean };
  if (!config.devTokens) {
    $("sign-in").replaceChildren(document.createTextNode("Sign-in needs a token from your identity provider."));
  }
  $("sign-in").addEventListener("submit", (e) => {
    e.preventDefault();
    void signIn($<HTMLInputElement>("actor").value.trim());
  });
  $("sign-out").addEventListener("click", () => {
    token = undefined;
    setSignedIn(undefined);
  });
  $("resolution").addEventListener("input", () => void refresh());
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
  document.documentElement.lang = navigator.language.startsWith("ja") ? "ja" : "en";
  await refresh();
  document.body.dataset.ready = "true";
}

void main();
