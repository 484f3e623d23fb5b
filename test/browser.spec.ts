import { mkdir } from "node:fs/promises";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type System, startSystem } from "./helpers/system.js";

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
afterAll(async () => {
  await browser?.close();
  await system?.close();
});

async function openPage(locale = "en-US", viewport = { width: 1100, height: 820 }): Promise<Page> {
  const context = await browser.newContext({ locale, viewport });
  const page = await context.newPage();
  await page.goto(system.gateway.url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
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
  return text.split(" ")[0] as string;
}

async function countOf(page: Page, cell: string): Promise<number> {
  const polygon = page.locator(`#map polygon.cell[data-cell="${cell}"]`);
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
        Number(document.querySelector(`#map polygon.cell[data-cell="${c}"]`)?.getAttribute("data-count") ?? 0) >
        Number(n),
      [cell, before],
    );
    expect(await countOf(page, cell)).toBe(before + 1);
    expect(await page.locator("#posts li").count()).toBe(1);
    await page.screenshot({ path: `${SHOTS}/2-posted.png` });
    await page.screenshot({ path: "docs/screenshot.png" });
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
