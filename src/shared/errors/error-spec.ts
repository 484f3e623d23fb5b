import type { Code } from "@connectrpc/connect";
import type { LogLevel } from "../code-table.js";
import type { Locale } from "../locale.js";
import type { LogId } from "../logging/log-catalog.js";

/** ErrorInfo.domain of every error this system produces (AIP-193). */
export const ERROR_DOMAIN = "bazbii.dev";

/**
 * One public error: what a caller sees, in every protocol, whichever hop made it.
 *
 * Texts are templates: `{name}` is replaced by the parameter of that name. Every
 * parameter is also sent in ErrorInfo.metadata (lowerCamelCase keys), so clients
 * never parse messages. Besides ErrorInfo, RequestInfo and LocalizedMessage,
 * which every error carries, the optional fields below attach the detail types
 * ERROR-MODEL.md asks for.
 */
export interface ErrorSpec {
  /** UPPER_SNAKE, at most 63 characters, stable forever. */
  readonly reason: string;
  readonly code: Code;
  /**
   * Says what is wrong and how to fix it, to the user, in each language
   * (LocalizedMessage); the English one is also the status message unless
   * `statusMessage` is given. Never internals.
   */
  readonly message: Readonly<Record<Locale, string>>;
  /**
   * The status message, where a policy fixes it in words meant for the
   * developer rather than the user (the seed's "actor_id not found in context").
   */
  readonly statusMessage?: string;
  /** BadRequest: the request field at fault (proto field name). */
  readonly badRequest?: { readonly field: string };
  /** ResourceInfo: the resource's type and name (template). */
  readonly resourceInfo?: { readonly type: string; readonly name: string };
  /** PreconditionFailure: the violation's type and subject (template). */
  readonly preconditionFailure?: { readonly type: string; readonly subject: string };
  /** QuotaFailure: the quota's subject (template). */
  readonly quotaFailure?: { readonly subject: string };
  /**
   * RetryInfo: when the server knows when to come back; an error may override
   * it. "per call": every occurrence carries a delay of its own (the time left
   * in a rate-limit window, until an endpoint is probed again).
   */
  readonly retryDelayMs?: number | "per call";
  /**
   * The level of its log line, where the code's level in the code table would
   * blame the wrong side: `unimplemented` is a server-class code, but a caller
   * asking for a method or a compression that does not exist broke nothing here.
   */
  readonly logLevel?: LogLevel;
  /** No longer raised; kept so that the reason is never reused. */
  readonly retired?: true;
  /**
   * Raised before any work was done (rate limit, load shedding, open circuit,
   * upstream unreachable): ErrorInfo.metadata says `processed: "false"`, which
   * lets clients retry even methods that are not idempotent.
   */
  readonly notProcessed?: true;
  /**
   * Which process raises this error, and the log ID it is logged under there.
   * (The gateway logs every error it relays from the API server as REQ_012, and a
   * failed Create is logged under its domain event's ID, EVT_POST_003.)
   */
  readonly log: { readonly api?: LogId; readonly gateway?: LogId };
}

/** Fills `{name}` placeholders; unknown names are left as they are. */
export function fillTemplate(template: string, params: Readonly<Record<string, string>>): string {
  if (!template.includes("{")) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => params[name] ?? whole);
}
