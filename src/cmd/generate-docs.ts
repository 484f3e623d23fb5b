import { readFile, writeFile } from "node:fs/promises";
import { generatedRegions, replaceRegion } from "../docs/generated-docs.js";

// Rewrites the generated regions of the documentation (npm run docs).
for (const region of generatedRegions) {
  const text = await readFile(region.file, "utf8");
  const updated = replaceRegion(text, region.name, region.render());
  if (updated !== text) {
    await writeFile(region.file, updated);
    process.stdout.write(`updated ${region.file} (${region.name})\n`);
  }
}
