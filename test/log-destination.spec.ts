import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

// The servers' logger writes each line to stdout before the logging call
// returns (npm test builds dist/ first): a process that dies the hardest way,
// SIGKILL, straight after logging has lost none of its lines.
describe("the servers' log destination", () => {
  it("has written every line to stdout by the time the logging call returns", async () => {
    const logger = pathToFileURL(resolve("dist/shared/logging/logger.js")).href;
    const script = `
      import { createLogger } from ${JSON.stringify(logger)};
      const log = createLogger({ service: "test", level: "info" });
      for (let i = 0; i < 1000; i++) log.warn({ log_id: "REQ_003", i }, "Request processing failed");
      process.kill(process.pid, "SIGKILL");
    `;
    const failure = await run(process.execPath, ["--input-type=module", "-e", script]).catch((err: unknown) => err);
    expect(failure).toMatchObject({ signal: "SIGKILL" });
    const lines = String((failure as { stdout: string }).stdout)
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(1000);
    expect(lines.map((line) => line.i)).toEqual([...Array(1000).keys()]);
    expect(lines[999]).toMatchObject({ level: "warn", log_id: "REQ_003", "service.name": "test" });
  });
});
