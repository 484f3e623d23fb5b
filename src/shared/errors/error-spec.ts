import type { Code } from "@connectrpc/connect";
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
  /** Says what is wrong and how to fix it; never internals. */
  readonly message: Readonly<Record<Locale, string>>;
  /** BadRequest: the request field at fault (proto field name). */
  readonly badRequest?: { readonly field: string };
  /** ResourceInfo: the resource's type and name (template). */
  readonly resourceInfo?: { readonly type: string; readonly name: string };
  /** PreconditionFailure: the violation's type and subject (template). */
  readonly preconditionFailure?: { readonly type: string; readonly subject: string };
  /** QuotaFailure: the quota's subject (template). */
  readonly quotaFailure?: { readonly subject: string };
  /** RetryInfo: when the server knows when to come back; an error may override it. */
  readonly retryDelayMs?: number;
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
