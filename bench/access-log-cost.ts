import pino from "pino";
import { logmsg } from "../src/shared/logging/log-catalog.js";
import { createLogger } from "../src/shared/logging/logger.js";

const LINES = 50_000;

/**
 * CPU microseconds one access-log line (REQ_005) costs a process: the
 * servers' own logger (redaction, formatters) writing a gateway's line,
 * with every field, synchronously to /dev/null, one write(2) per line as to
 * stdout. Measured in this process, beside the stacks' figures, which the
 * noise between two stacks of processes blurs.
 */
export function accessLineCpuUs(): number {
  const log = createLogger({ service: "gateway", level: "info" }, pino.destination({ dest: "/dev/null", sync: true }));
  const once = (i: number): void => {
    logmsg.CallCompleted.emit(log, {
      request_id: `bench-${i}-5b1c2d3e-0f4a-4b5c-8d6e-7f8091a2b3c4`,
      trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
      "rpc.method": "bazbii.post.v1.UserPostService/Get",
      protocol: "connect",
      code: "ok",
      duration_ms: 1.234,
      request_bytes: 48,
      response_bytes: 131,
      attempts: 1,
      endpoint: "127.0.0.1:8081",
      client_address: "127.0.0.1",
    });
  };
  for (let i = 0; i < 5_000; i++) once(i); // warm up
  const before = process.cpuUsage();
  for (let i = 0; i < LINES; i++) once(i);
  const used = process.cpuUsage(before);
  return Math.round(((used.user + used.system) / LINES) * 100) / 100;
}
