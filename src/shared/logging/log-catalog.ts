import { ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { codeTable, type LogLevel } from "../code-table.js";
import { errorCatalog } from "../errors/catalog.js";

/** Where a log ID is emitted. */
export type LogLayer = "process" | "gateway" | "application" | "domain" | "adapter";

/**
 * `by_code`: the line logs an RPC error, and its level comes from the code
 * table (client errors warn, server errors error, canceled info).
 */
export type LogIdLevel = LogLevel | "by_code";

/** One stable log ID: a fixed message, a level and the layer that owns it. */
export class LogMessage<Id extends string = string> {
  readonly id: Id;
  readonly level: LogIdLevel;
  readonly msg: string;
  readonly layer: LogLayer;
  /** Retired IDs stay in the catalog so they are never issued again. */
  readonly retired: boolean;

  constructor(id: Id, level: LogIdLevel, msg: string, layer: LogLayer, retired = false) {
    this.id = id;
    this.level = level;
    this.msg = msg;
    this.layer = layer;
    this.retired = retired;
  }

  /** Logs a line under this ID; variable parts go in fields, never in the message. */
  emit(log: Logger, fields: Record<string, unknown> = {}): void {
    const level = this.level === "by_code" ? "error" : this.level;
    log[level]({ log_id: this.id, ...fields }, this.msg);
  }

  /**
   * Logs an error under this ID, at the level its code has in the code table
   * (or its reason's own, given as the `reason` field: ErrorSpec.logLevel).
   */
  emitError(log: Logger, err: unknown, fields: Record<string, unknown> = {}): void {
    const level = levelFor(this.level, err, fields.reason);
    if (!log.isLevelEnabled(level)) return;
    const code = err instanceof ConnectError ? codeTable[err.code].name : undefined;
    // How much of the error a line shows (client errors without their stacks) is the logger's err serializer's call.
    log[level]({ log_id: this.id, code, ...fields, err }, this.msg);
  }
}

/** Reasons logged at a level of their own rather than their code's. */
const levelByReason: ReadonlyMap<unknown, LogLevel> = new Map(
  Object.values(errorCatalog).flatMap((spec) => (spec.logLevel === undefined ? [] : [[spec.reason, spec.logLevel]])),
);

function levelFor(level: LogIdLevel, err: unknown, reason: unknown): LogLevel {
  if (level !== "by_code") return level;
  if (!(err instanceof ConnectError)) return "error";
  return levelByReason.get(reason) ?? codeTable[err.code].logLevel;
}

/**
 * THE log-ID catalog. IDs are append-only: never removed, renumbered or reused
 * (test/log-catalog.spec.ts checks this against docs/log-ids.issued). Messages
 * are fixed text; what varies goes in fields.
 */
export const logmsg = {
  ServerStarted: new LogMessage("SYS_001", "info", "Server started", "process"),
  ServerStopping: new LogMessage("SYS_002", "info", "Server stopping", "process"),
  ServerStartFailed: new LogMessage("SYS_003", "error", "Server failed to start", "process"),
  RequestContextMissing: new LogMessage("REQ_001", "by_code", "Request context missing", "application"),
  RequestRejected: new LogMessage("REQ_002", "by_code", "Request rejected by the gateway", "gateway"),
  RequestFailed: new LogMessage("REQ_003", "by_code", "Request processing failed", "application"),
  InternalCallRefused: new LogMessage(
    "REQ_004",
    "warn",
    "Call without a valid gateway assertion refused",
    "application",
  ),
  APICallFailed: new LogMessage("REQ_012", "by_code", "API service call failed", "gateway"),
  PostCreationFailed: new LogMessage("EVT_POST_003", "by_code", "Post creation failed", "domain"),
  EventPublishFailed: new LogMessage("EVT_BUS_001", "error", "Domain event publish failed", "adapter"),
  RateLimitStoreDown: new LogMessage(
    "GW_001",
    "warn",
    "Rate-limit store unavailable; using in-memory limits",
    "gateway",
  ),
  RateLimitStoreUp: new LogMessage("GW_002", "info", "Rate-limit store available again", "gateway"),
  // The one circuit breaker gave way to outlier detection per endpoint (GW_007, GW_008).
  CircuitOpened: new LogMessage("GW_003", "warn", "Circuit breaker opened", "gateway", true),
  CircuitHalfOpen: new LogMessage("GW_004", "info", "Circuit breaker half-open", "gateway", true),
  CircuitClosed: new LogMessage("GW_005", "info", "Circuit breaker closed", "gateway", true),
  RelayFailed: new LogMessage("GW_006", "error", "Gateway relay failed unexpectedly", "gateway"),
  EndpointEjected: new LogMessage("GW_007", "warn", "Upstream endpoint ejected", "gateway"),
  EndpointReturned: new LogMessage("GW_008", "info", "Upstream endpoint returned", "gateway"),
  EndpointAdded: new LogMessage("GW_009", "info", "Upstream endpoint added", "gateway"),
  EndpointRemoved: new LogMessage("GW_010", "info", "Upstream endpoint removed; draining it", "gateway"),
  EndpointHealthChanged: new LogMessage("GW_011", "info", "Upstream endpoint health changed", "gateway"),
  EndpointResolveFailed: new LogMessage("GW_012", "warn", "Upstream host name could not be resolved", "gateway"),
  ServerDraining: new LogMessage("SYS_004", "info", "Server draining: not ready, still serving", "process"),
  StorageDown: new LogMessage("API_001", "error", "Storage unreachable; not serving", "adapter"),
  StorageUp: new LogMessage("API_002", "info", "Storage reachable again; serving", "adapter"),
  TlsReloaded: new LogMessage("SYS_005", "info", "TLS certificate reloaded", "process"),
  TlsReloadFailed: new LogMessage(
    "SYS_006",
    "error",
    "TLS certificate reload failed; the previous one stays in use",
    "process",
  ),
  // The access log (ACCESS_LOG): one line per call, whatever its outcome.
  CallCompleted: new LogMessage("REQ_005", "info", "Call completed", "process"),
  TraceExportFailing: new LogMessage(
    "SYS_007",
    "warn",
    "Trace export failing; spans are dropped until it works again",
    "process",
  ),
  TraceExportRecovered: new LogMessage("SYS_008", "info", "Trace export working again", "process"),
} as const;

export type LogId = (typeof logmsg)[keyof typeof logmsg]["id"];

const byId = new Map<string, LogMessage>(Object.values(logmsg).map((m) => [m.id, m]));

/** The catalog entry of a log ID. */
export function logMessageById(id: LogId): LogMessage {
  const entry = byId.get(id);
  if (entry === undefined) throw new Error(`log ID ${id} is not in the catalog`);
  return entry;
}
