import { ConnectError } from "@connectrpc/connect";
import { type DestinationStream, type Logger, type LoggerOptions, pino, stdSerializers } from "pino";
import { codeTable } from "../code-table.js";

export type { Logger } from "pino";

/**
 * Header and credential paths that must never reach a log line, whatever object
 * someone logs. Explicit paths, as pino's redaction is compiled for speed.
 */
export const REDACTED_PATHS = [
  "authorization",
  "cookie",
  "token",
  "headers.authorization",
  "headers.cookie",
  "req.headers.authorization",
  "req.headers.cookie",
  "metadata.authorization",
  "metadata.cookie",
];

export interface LoggerConfig {
  /** `service.name` of every line (OpenTelemetry's name): which process wrote it. */
  readonly service: string;
  readonly level: string;
}

/**
 * pino's standard error serializer (message and stack include the cause chain),
 * minus what a ConnectError carries for the wire: raw detail bytes and headers
 * make lines long, and headers could hold credentials.
 *
 * A client-class error (not_found, invalid_argument, ...) is an expected answer,
 * logged on the error path's hot loop: its code, message and the line's reason
 * say all there is, and a stack with its cause chain says nothing and costs. Its
 * cause is named only when it says something the message does not.
 */
function serializeError(err: unknown): unknown {
  if (err instanceof ConnectError && codeTable[err.code]?.errorClass === "client") {
    const out: Record<string, unknown> = {
      type: "ConnectError",
      code: codeTable[err.code].name,
      message: err.rawMessage,
    };
    const cause = err.cause;
    if (cause instanceof Error && cause.message !== err.rawMessage) out.cause = `${cause.name}: ${cause.message}`;
    return out;
  }
  const out = stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (err instanceof ConnectError) {
    delete out.details;
    delete out.metadata;
    out.code = codeTable[err.code]?.name ?? err.code;
  }
  return out;
}

/**
 * stdout, written synchronously: one write(2) per line on the thread that
 * logs, as Node itself writes to files and pipes on Linux, so a crash loses no
 * line. pino's default destination hands each write to libuv's thread pool
 * instead, which costs more than the write: 19 against 10 µs of CPU per line
 * when lines come one per event-loop turn, as on the error path, plus a
 * thread wake-up each time (bench/README.md, "Synchronous logging").
 */
function stdout(): DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}

/** One JSON object per line, ISO time, level as a word; to stdout unless another destination is given. */
export function createLogger(config: LoggerConfig, destination: DestinationStream = stdout()): Logger {
  const options: LoggerOptions = {
    level: config.level,
    base: { "service.name": config.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError },
    redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" },
  };
  return pino(options, destination);
}
