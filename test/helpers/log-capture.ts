import { createLogger, type Logger } from "../../src/shared/logging/logger.js";

export type LogLine = Record<string, unknown> & { level: string; msg: string; log_id?: string; request_id?: string };

/** A real pino logger whose JSON lines are kept for assertions instead of written to stdout. */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;

  constructor(service: string, level = "info") {
    this.logger = createLogger(
      { service, level },
      {
        write: (chunk: string) => {
          for (const line of chunk.split("\n")) if (line !== "") this.lines.push(JSON.parse(line) as LogLine);
        },
      },
    );
  }

  forRequest(requestId: string): LogLine[] {
    return this.lines.filter((l) => l.request_id === requestId);
  }

  withLogId(logId: string): LogLine[] {
    return this.lines.filter((l) => l.log_id === logId);
  }

  /** The raw text of every line, to search for things that must never be logged (or must be). */
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join("\n");
  }
}
