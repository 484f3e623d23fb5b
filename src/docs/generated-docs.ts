import { renderConfigurationTable } from "./configuration-table.js";
import { renderCodeTable, renderErrorCatalogTable } from "./error-catalog-table.js";
import { renderLogIdTable } from "./log-id-table.js";

/** A region of a file that is generated: between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. */
export interface GeneratedRegion {
  readonly file: string;
  readonly name: string;
  render(): string;
}

/** Every generated piece of documentation; `npm run docs` writes them, a test checks they are current. */
export const generatedRegions: readonly GeneratedRegion[] = [
  { file: "README.md", name: "configuration", render: renderConfigurationTable },
  { file: "docs/errors.md", name: "codes", render: renderCodeTable },
  { file: "docs/errors.md", name: "errors", render: renderErrorCatalogTable },
  { file: "docs/log-ids.md", name: "log-ids", render: renderLogIdTable },
];

export function replaceRegion(text: string, name: string, content: string): string {
  const start = `<!-- generated:${name} -->`;
  const end = `<!-- /generated:${name} -->`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`missing ${start} ... ${end}`);
  return `${text.slice(0, from + start.length)}\n${content}\n${text.slice(to)}`;
}
