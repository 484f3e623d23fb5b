import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { generatedRegions, replaceRegion } from "../src/docs/generated-docs.js";

describe("generated documentation", () => {
  it.each(generatedRegions.map((r) => [`${r.file} (${r.name})`, r] as const))(
    "%s is current: run npm run docs",
    async (_label, region) => {
      const text = await readFile(region.file, "utf8");
      expect(replaceRegion(text, region.name, region.render())).toBe(text);
    },
  );
});
