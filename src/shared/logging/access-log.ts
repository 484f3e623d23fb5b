import { codeTable } from "../code-table.js";
import type { CallOutcome } from "../metrics/rpc-metrics.js";
import type { CallRecord } from "../tracing/call-record.js";
import { logmsg } from "./log-catalog.js";
import type { Logger } from "./logger.js";

/** ACCESS_LOG: a line for every call, for the calls that did not end ok, or none. */
export const ACCESS_LOG_MODES = ["errors", "on", "off"] as const;
export type AccessLogMode = (typeof ACCESS_LOG_MODES)[number];

/**
 * Writes the call's access-log line (REQ_005, at info), if the mode wants it:
 * who called what, in which protocol, how it ended and how long it took, the
 * bytes each way, and, on the gateway, which API server endpoint answered
 * after how many attempts. Ids and sizes only: no message, header or token.
 * Its fields are those of every line of the request (request_id, trace_id,
 * rpc.method, actor_id), written on the server's own logger rather than a
 * per-request child, which a call that logs nothing else never makes.
 */
export function writeAccessLine(
  log: Logger,
  mode: AccessLogMode,
  call: CallRecord,
  outcome: CallOutcome,
  durationMs: number,
): void {
  if (mode === "off" || (mode === "errors" && outcome.code === "ok")) return;
  logmsg.CallCompleted.emit(log, {
    request_id: call.requestId,
    trace_id: call.trace.traceId,
    "rpc.method": call.rpcMethod,
    ...(call.actorId === undefined ? {} : { actor_id: call.actorId }),
    protocol: call.protocol,
    code: outcome.code === "ok" ? "ok" : codeTable[outcome.code].name,
    ...(outcome.errorType === "" ? {} : { reason: outcome.errorType }),
    duration_ms: Math.round(durationMs * 1000) / 1000,
    request_bytes: call.requestBytes,
    response_bytes: call.responseBytes,
    ...(call.attempts === undefined ? {} : { attempts: call.attempts }),
    ...(call.endpoint === undefined ? {} : { endpoint: call.endpoint }),
    client_address: call.clientAddress,
  });
}
