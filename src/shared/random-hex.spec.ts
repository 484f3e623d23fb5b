import { describe, expect, it } from "vitest";
import { randomHex } from "./random-hex.js";

describe("randomHex", () => {
  it("gives ids of the asked length, never twice, across refills of its pool", () => {
    // 1000 × 16 bytes is four refills of the 4 KiB pool.
    const ids = Array.from({ length: 1000 }, () => randomHex(16));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(randomHex(8)).toMatch(/^[0-9a-f]{16}$/);
  });
});
