import { describe, expect, it } from "vitest";
import { negotiateLocale } from "./locale.js";

describe("negotiateLocale", () => {
  it.each([
    [null, "en"],
    ["", "en"],
    ["ja", "ja"],
    ["ja-JP,ja;q=0.9,en-US;q=0.8", "ja"],
    ["en-US,en;q=0.9", "en"],
    ["fr-FR,fr;q=0.9", "en"],
    ["fr;q=1, ja;q=0.5, en;q=0.4", "ja"],
    ["*", "en"],
  ])("%j → %s", (header, locale) => {
    expect(negotiateLocale(header)).toBe(locale);
  });
});
