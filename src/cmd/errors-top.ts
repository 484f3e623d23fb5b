import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { formatErrorSummary, summarizeErrors } from "../shared/logging/error-summary.js";

// Summarizes a JSON log by log ID and reason: npm run errors:top -- <log file>   (or - for stdin)
const file = process.argv[2];
if (file === undefined) {
  process.stderr.write("usage: npm run errors:top -- <log file | ->\n");
  process.exit(2);
}
const input = file === "-" ? process.stdin : createReadStream(file);
input.on("error", (err: Error) => {
  process.stderr.write(`cannot read ${file}: ${err.message}\n`);
  process.exit(1);
});
const lines: string[] = [];
for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) lines.push(line);
process.stdout.write(`${formatErrorSummary(summarizeErrors(lines))}\n`);
