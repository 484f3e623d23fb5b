import { mkdir } from "node:fs/promises";
import { cellToParent, getResolution, latLngToCell } from "h3-js";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { metricValue, timeUntil } from "./helpers/load.js";
import { type System, startApi, startSystem } from "./helpers/system.js";

// End to end in a real headless Chromium (Debian's), against the real gateway
// (serving the built page from dist/web) and API server.

const SHOTS = "test-results/screenshots";
let system: System;
let browser: Browser;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  system = await startSystem({ api: { faultInjection: true }, gateway: { faultInjection: true } });
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});
// A test that failed half-way leaves no page (and no watch) open for the next one.
afterEach(async () => {
  for (const context of browser.contexts()) await context.close();
});
afterAll(async () => {
  await browser?.close();
  await system?.close();
});

async function openPage(locale = "en-US", viewport = { width: 1100, height: 820 }, on = system): Promise<Page> {
  const context = await browser.newContext({ locale, viewport });
  const page = await context.newPage();
  await page.goto(on.gateway.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

/** Waits until the page says its map is live (or `state`). */
async function feedState(page: Page, state = "live", timeout = 5_000): Promise<string> {
  await page.waitForSelector(`#feed-state[data-state="${state}"]`, { timeout });
  return (await page.textContent("#feed-state")) ?? "";
}

/** Creates a post at (lat, lng) through the gateway as a browser would (Connect JSON); returns its cell at resolution 5. */
async function postAt(on: System, actor: string, lat: number, lng: number): Promise<string> {
  const h3Index = latLngToCell(lat, lng, 9);
  const res = await fetch(`${on.gateway.url}/bazbii.post.v1.UserPostService/Create`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await on.token(actor)}` },
    body: JSON.stringify({ h3Index, text: "seed", requestId: crypto.randomUUID() }),
  });
  expect(res.status).toBe(200);
  // The heatmap counts a post in its cell's parent, which is not always the cell at (lat, lng) itself.
  return cellToParent(h3Index, 5);
}

/** The cells the map draws now, with their counts. */
function drawnCells(page: Page): Promise<Record<string, number>> {
  return page.$$eval("#map .cell", (cells) =>
    Object.fromEntries(cells.map((c) => [c.getAttribute("data-cell"), Number(c.getAttribute("data-count"))])),
  );
}

/** Waits for the cell's count on the map to be `count` (0: not drawn), polling often. */
async function cellCount(page: Page, cell: string, count: number, timeout = 5_000): Promise<void> {
  await page.waitForFunction(
    ([c, n]) => Number(document.querySelector(`#map .cell[data-cell="${c}"]`)?.getAttribute("data-count") ?? 0) === n,
    [cell, count] as const,
    { polling: 20, timeout },
  );
}

/** Records every state the live badge takes, so a brief "reconnecting" is not missed. */
async function recordFeedStates(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const badge = document.getElementById("feed-state") as HTMLElement;
    const log: string[] = [badge.dataset.state ?? ""];
    (window as unknown as { feedLog: string[] }).feedLog = log;
    new MutationObserver(() => log.push(badge.dataset.state ?? "")).observe(badge, {
      attributes: true,
      attributeFilter: ["data-state"],
    });
  });
  return () => page.evaluate(() => (window as unknown as { feedLog: string[] }).feedLog);
}

/** Waits until the recorded states hold `states` in that order (others may come between). */
async function statesSeen(page: Page, states: readonly string[], timeout: number): Promise<void> {
  await page.waitForFunction(
    (wanted) => {
      let i = 0;
      for (const s of (window as unknown as { feedLog: string[] }).feedLog) if (s === wanted[i]) i++;
      return i === wanted.length;
    },
    states,
    { polling: 20, timeout },
  );
}

async function signIn(page: Page, actor: string): Promise<void> {
  await page.fill("#actor", actor);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#signed-in:not([hidden])");
}

/** Chooses the cell at the centre of the map with the keyboard, and returns its id. */
async function chooseCentre(page: Page): Promise<string> {
  await page.focus("#map-button");
  await page.keyboard.press("Enter");
  const text = (await page.textContent("#selected-cell")) ?? "";
  return /^[0-9a-f]+/.exec(text)?.[0] as string;
}

async function countOf(page: Page, cell: string): Promise<number> {
  const polygon = page.locator(`#map .cell[data-cell="${cell}"]`);
  return (await polygon.count()) === 0 ? 0 : Number(await polygon.getAttribute("data-count"));
}

/** Records every text the status region shows, so a brief retry notice is not missed. */
async function recordStatus(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const log: string[] = [];
    (window as unknown as { statusLog: string[] }).statusLog = log;
    const status = document.getElementById("status") as HTMLElement;
    new MutationObserver(() =>
      log.push(`${status.className}: ${status.textContent?.replace(/\s+/g, " ").trim()}`),
    ).observe(status, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
  return () => page.evaluate(() => (window as unknown as { statusLog: string[] }).statusLog);
}

describe("the page served by the gateway", () => {
  it("creates a post at the chosen cell and the cell's count rises", async () => {
    const page = await openPage();
    await page.screenshot({ path: `${SHOTS}/1-loaded.png` });
    await signIn(page, "browser-alice");
    await page.click("#zoom-in"); // a view of its own, away from other tests' posts
    await page.click("#pan-east");
    const cell = await chooseCentre(page);
    const before = await countOf(page, cell);
    await page.fill("#text", "Hello from Chromium");
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#status.ok");
    await page.waitForFunction(
      ([c, n]) =>
        Number(document.querySelector(`#map .cell[data-cell="${c}"]`)?.getAttribute("data-count") ?? 0) > Number(n),
      [cell, before],
    );
    expect(await countOf(page, cell)).toBe(before + 1);
    expect(await page.locator("#posts li").count()).toBe(1);
    await page.screenshot({ path: `${SHOTS}/2-posted.png` });
    await page.context().close();
  });

  it("shows a post made in another page within 1 s, without reloading, and says it is live", async () => {
    const watcher = await openPage();
    const poster = await openPage();
    expect(await feedState(watcher)).toBe("live");
    await signIn(poster, "browser-fern");
    for (const page of [watcher, poster]) await page.click("#pan-west"); // the same view, of its own
    const cell = await chooseCentre(poster);
    const before = await countOf(watcher, cell);
    await watcher.evaluate(() => Object.assign(window, { sameDocument: true }));
    await poster.fill("#text", "seen everywhere");
    const clicked = performance.now();
    await poster.click("#post-form button[type=submit]");
    await cellCount(watcher, cell, before + 1, 1_000);
    const tookMs = performance.now() - clicked;
    expect(tookMs).toBeLessThan(1_000);
    expect(await watcher.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    expect(await watcher.textContent("#feed-state")).toBe("live");
    // The page that posted sees it through the same feed.
    await cellCount(poster, cell, before + 1, 1_000);
    await watcher.screenshot({ path: `${SHOTS}/7-live-other-page.png` });
    await watcher.context().close();
    await poster.context().close();
  });

  it("draws the world's land under the cells, and scales the legend to the cells in view", async () => {
    // Posts around Japan, and more in one cell in Sydney, far out of Japan's view.
    for (const [lat, lng] of [
      [35.68, 139.76],
      [35.68, 139.76],
      [34.69, 135.5],
      [35.18, 136.91],
      [38.27, 140.87],
      [34.39, 132.46],
    ] as const) {
      await postAt(system, "browser-gina", lat, lng);
    }
    let sydney = "";
    for (let i = 0; i < 6; i++) sydney = await postAt(system, "browser-gina", -33.87, 151.21);
    const page = await openPage();
    await feedState(page);
    await page.click("#zoom-out");
    await page.click("#zoom-out"); // 8° of latitude around Tokyo: Honshu from end to end
    const land = await page.$eval("#map path.land", (p) => ({
      length: p.getAttribute("d")?.length ?? 0,
      rings: (p.getAttribute("d")?.match(/M/g) ?? []).length,
      underCells:
        ((document.querySelector("#map .base") as Node).compareDocumentPosition(
          document.querySelector("#map .cells") as Node,
        ) &
          Node.DOCUMENT_POSITION_FOLLOWING) !==
        0,
      // Central Honshu (Nagano) is land; the Pacific east of it is not: the land is where the cells are.
      nagano: (p as SVGPathElement).isPointInFill(new DOMPoint(302.5, 217.5)),
      pacific: (p as SVGPathElement).isPointInFill(new DOMPoint(602.5, 417.5)),
    }));
    expect(land).toMatchObject({ underCells: true, nagano: true, pacific: false });
    expect(land.length).toBeGreaterThan(200);
    expect(land.rings).toBeGreaterThan(1);

    // In Japan's view the legend goes up to the largest count there, not Sydney's.
    const japan = await drawnCells(page);
    expect(Object.keys(japan)).not.toContain(sydney);
    const japanMax = Math.max(...Object.values(japan));
    expect(japanMax).toBeGreaterThanOrEqual(2);
    expect(japanMax).toBeLessThan(6);
    expect(await page.getAttribute("#legend", "data-max")).toBe(String(japanMax));
    expect(await page.textContent("#legend .legend-max")).toBe(String(japanMax));
    for (let i = 0; i < 4; i++) await page.click("#zoom-out");
    await page.click("#pan-south"); // most of the Pacific's west: Sydney in view
    const world = await drawnCells(page);
    expect(world[sydney]).toBe(6);
    expect(await page.$eval("#map path.borders", (p) => p.getAttribute("d")?.length ?? 0)).toBeGreaterThan(1_000);
    expect(await page.getAttribute("#legend", "data-max")).toBe(String(Math.max(...Object.values(world))));
    await page.screenshot({ path: `${SHOTS}/8-world.png` });

    // The picture in the README: Japan at resolution 4, live, after a post.
    await page.click("#pan-north");
    for (let i = 0; i < 4; i++) await page.click("#zoom-in");
    await page.focus("#resolution");
    await page.keyboard.press("ArrowLeft");
    await page.waitForFunction(() => document.querySelector("#map .cell")?.getAttribute("data-cell")?.startsWith("84")); // resolution 4
    await feedState(page);
    await signIn(page, "browser-gina");
    await chooseCentre(page);
    await page.fill("#text", "Hello from Tokyo");
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#status.ok");
    await page.screenshot({ path: "docs/screenshot.png" });
    await page.context().close();
  });

  it("watches again when the resolution changes, and ends the watch before it", async () => {
    await postAt(system, "browser-hana", 35.68, 139.76);
    const page = await openPage();
    await feedState(page);
    // Watches open at the gateway: this page's, and any of an earlier test's page not yet noticed as gone.
    const open = async () =>
      (await metricValue(system.gateway.url, "bazbii_streams_open", 'rpc_method="WatchHeatmap"')) ?? Number.NaN;
    const openBefore = await open();
    expect(openBefore).toBeGreaterThanOrEqual(1);
    expect(Object.keys(await drawnCells(page)).map(getResolution)).toContain(5);
    await page.focus("#resolution");
    for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowLeft");
    expect(await page.textContent("#resolution-value")).toBe("2");
    await feedState(page);
    await page.waitForFunction(() => document.querySelectorAll("#map .cell").length > 0);
    expect(new Set(Object.keys(await drawnCells(page)).map(getResolution))).toEqual(new Set([2]));
    // Three watches later, no more open than before: each change canceled the watch it replaced.
    await timeUntil(async () => (await open()) <= openBefore, 2_000);
    await page.context().close();
  });

  it("labels the page in Japanese for a Japanese browser", async () => {
    const page = await openPage("ja-JP");
    expect(await feedState(page)).toBe("ライブ");
    expect(await page.getAttribute("html", "lang")).toBe("ja");
    expect(await page.title()).toBe("Bazbii ヒートマップ");
    expect(await page.textContent("#map-title")).toBe("ヒートマップ");
    expect(await page.textContent("#sign-in button[type=submit]")).toBe("サインイン（開発用）");
    expect(await page.textContent("#post-title")).toBe("投稿");
    expect(await page.textContent("#post-form button[type=submit]")).toBe("ここに投稿");
    expect(await page.textContent("#selected-cell")).toBe("未選択");
    expect(await page.getAttribute("#zoom-in", "aria-label")).toBe("拡大");
    expect(await page.textContent("label[for=resolution]")).toMatch(/^H3 解像度 \d+$/);
    expect(await page.textContent("#legend")).toMatch(
      /^(表示範囲のセルごとの投稿数:|表示範囲に投稿はまだありません。)/,
    );
    await signIn(page, "browser-ichiro");
    expect(await page.textContent("#sign-out")).toBe("サインアウト");
    await page.screenshot({ path: `${SHOTS}/9-japanese-labels.png` });
    await page.context().close();
  });

  it("fits a phone-sized screen (390×844): nothing overflows, the controls are there", async () => {
    const page = await openPage("en-US", { width: 390, height: 844 });
    await feedState(page);
    await signIn(page, "browser-jun");
    await chooseCentre(page);
    await page.fill("#text", "from a phone");
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#status.ok");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    for (const selector of [
      "#feed-state",
      "#resolution",
      "#zoom-in",
      "#zoom-out",
      "#pan-east",
      "#map-button",
      "#legend",
      "#text",
      "#post-form button[type=submit]",
      "#sign-out",
    ]) {
      const box = await page.locator(selector).boundingBox();
      expect({ selector, visible: await page.isVisible(selector) }).toEqual({ selector, visible: true });
      expect(box && box.x >= 0 && box.x + box.width <= 390, `${selector} within the width`).toBe(true);
    }
    const map = await page.locator("#map").boundingBox();
    expect(map?.width).toBeGreaterThan(340); // the map gets the phone's width
    await page.screenshot({ path: `${SHOTS}/10-phone.png`, fullPage: true });
    await page.context().close();
  });

  it("shows a field error next to the text field for an empty post, with the code and request id", async () => {
    const page = await openPage();
    await signIn(page, "browser-bob");
    await chooseCentre(page);
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#text-error:not([hidden])");
    expect(await page.textContent("#text-error")).toBe("text must not be empty");
    expect(await page.getAttribute("#text", "aria-invalid")).toBe("true");
    expect(await page.textContent("#status-code")).toBe("invalid_argument");
    expect(await page.textContent("#status-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    await page.screenshot({ path: `${SHOTS}/3-field-error.png` });
    await page.context().close();
  });

  it("shows the message in Japanese for a Japanese browser", async () => {
    const page = await openPage("ja-JP");
    await signIn(page, "browser-chiyo");
    await chooseCentre(page);
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#text-error:not([hidden])");
    expect(await page.textContent("#text-error")).toBe("本文を入力してください");
    expect(await page.textContent("#status-message")).toBe("本文を入力してください");
    await page.screenshot({ path: `${SHOTS}/4-japanese.png` });
    await page.context().close();
  });

  it("shows that a retry is under way while the API is unavailable twice, then the success", async () => {
    const page = await openPage("en-US", { width: 390, height: 844 }); // phone-sized
    await signIn(page, "browser-dora");
    await chooseCentre(page);
    await page.route("**/bazbii.post.v1.UserPostService/Create", (route) =>
      route.continue({
        headers: {
          ...route.request().headers(),
          "x-bazbii-fault-abort": "unavailable",
          "x-bazbii-fault-abort-attempts": "2",
        },
      }),
    );
    const statusLog = await recordStatus(page);
    await page.fill("#text", "third time lucky");
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#status.ok");
    expect(await page.textContent("#status-message")).toBe("Posted: succeeded on attempt 3 after 2 retries.");
    const log = await statusLog();
    expect(log.some((s) => s.startsWith("status retrying:") && s.includes("retrying (attempt 2)"))).toBe(true);
    expect(log.some((s) => s.includes("retrying (attempt 3)"))).toBe(true);
    await page.screenshot({ path: `${SHOTS}/5-retried.png` });
    await page.context().close();
  });

  it("shows unavailable with a request id that matches the gateway's REQ_012 line when the API server is down", async () => {
    const page = await openPage();
    await signIn(page, "browser-emil");
    await chooseCentre(page);
    await system.stopApi();
    await page.fill("#text", "into the void");
    await page.click("#post-form button[type=submit]");
    await page.waitForSelector("#status.error");
    expect(await page.textContent("#status-code")).toBe("unavailable");
    expect(await page.textContent("#status-message")).toContain("API servers can take the request");
    const requestId = (await page.textContent("#status-request-id")) ?? "";
    expect(system.gatewayLogs.forRequest(requestId).map((l) => [l.log_id, l.code])).toEqual([
      ["REQ_012", "unavailable"],
    ]);
    await page.screenshot({ path: `${SHOTS}/6-api-down.png` });
    await page.context().close();
  });
});

describe("the live map when its stream ends", () => {
  it("says reconnecting… when a stream ends at its longest duration, then live again, and goes on updating", async () => {
    const short = await startSystem({ gateway: { maxStreamDurationMs: 1_000 } });
    try {
      const page = await openPage("en-US", undefined, short);
      await feedState(page);
      const states = await recordFeedStates(page);
      await statesSeen(page, ["live", "reconnecting", "live"], 5_000);
      expect(await page.isHidden("#status")).toBe(true); // a routine end is no error to show
      await statesSeen(page, ["live", "reconnecting", "live", "reconnecting", "live"], 5_000);
      const cell = await postAt(short, "browser-kai", 35.68, 139.76);
      await cellCount(page, cell, 1, 2_000);
      expect(await states()).not.toContain("stopped");
      await page.context().close();
    } finally {
      await short.close();
    }
  });

  it("says reconnecting… while the API server is down, keeps the last counts, and is live again once it is back", async () => {
    const s = await startSystem();
    let restarted: Awaited<ReturnType<typeof startApi>> | undefined;
    try {
      const cell = await postAt(s, "browser-lena", 35.68, 139.76);
      const page = await openPage("en-US", undefined, s);
      await feedState(page);
      await cellCount(page, cell, 1);
      await s.stopApi();
      expect(await feedState(page, "reconnecting")).toBe("reconnecting…");
      expect(await page.getAttribute("#map", "class")).toContain("stale");
      expect(await countOf(page, cell)).toBe(1); // the last counts stay on the map meanwhile
      await page.screenshot({ path: `${SHOTS}/11-reconnecting.png` });
      // A new API server at the same address, with storage of its own (empty): its snapshot replaces the map.
      restarted = await startApi({ api: { port: Number(new URL(s.api.url).port) } });
      await feedState(page, "live", 15_000);
      await cellCount(page, cell, 0);
      expect(await page.getAttribute("#map", "class")).not.toContain("stale");
      await page.context().close();
    } finally {
      await restarted?.api.close(0);
      await restarted?.cleanup();
      await s.close();
    }
  });
});
