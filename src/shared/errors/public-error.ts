import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { type Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  LocalizedMessageSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  RequestInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { codeTable } from "../code-table.js";
import type { Locale } from "../locale.js";
import { type LogId, type LogMessage, logMessageById } from "../logging/log-catalog.js";
import { errorCatalog } from "./catalog.js";
import { ERROR_DOMAIN, type ErrorSpec, fillTemplate } from "./error-spec.js";

/** What every error needs from the request it answers. */
export interface ErrorContext {
  readonly requestId: string;
  readonly locale: Locale;
}

export interface PublicErrorOptions {
  /** Values for the message templates; all are sent in ErrorInfo.metadata. */
  readonly params?: Readonly<Record<string, string>>;
  /** Kept on the error for the log line; never serialized to the caller. */
  readonly cause?: unknown;
  /** RetryInfo delay for this occurrence, overriding the spec's. */
  readonly retryDelayMs?: number;
  /** Response headers to send with the error (e.g. retry-after). */
  readonly headers?: HeadersInit;
  /**
   * More BadRequest violations found in the same request, after this error's
   * own: one answer tells a caller every field to fix.
   */
  readonly moreViolations?: readonly { readonly spec: ErrorSpec; readonly params: Readonly<Record<string, string>> }[];
}

type Detail = { desc: DescMessage; value: MessageInitShape<DescMessage> };

/** Metadata values are for machines; a runaway value must not bloat every response. */
const MAX_PARAM_LENGTH = 256;

/**
 * Builds the ConnectError a caller receives for `spec`: the English message,
 * ErrorInfo, RequestInfo and LocalizedMessage always, plus the type-specific
 * details the spec asks for; at most one detail of each type.
 */
export function publicError(spec: ErrorSpec, ctx: ErrorContext, options: PublicErrorOptions = {}): ConnectError {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.params ?? {})) metadata[key] = value.slice(0, MAX_PARAM_LENGTH);
  if (spec.notProcessed) metadata.processed = "false";
  // Templates may also quote the request id, which travels in RequestInfo instead of metadata.
  const values = { ...metadata, requestId: metadata.requestId ?? ctx.requestId };
  const message = fillTemplate(spec.statusMessage ?? spec.message.en, values);
  const localized =
    ctx.locale === "en" && spec.statusMessage === undefined ? message : fillTemplate(spec.message[ctx.locale], values);

  const details: Detail[] = [
    { desc: ErrorInfoSchema, value: { reason: spec.reason, domain: ERROR_DOMAIN, metadata } },
    { desc: RequestInfoSchema, value: { requestId: ctx.requestId } },
    { desc: LocalizedMessageSchema, value: { locale: ctx.locale, message: localized } },
  ];
  if (spec.badRequest) {
    const fieldViolations = [fieldViolation(spec, values, message, localized, ctx.locale)];
    for (const more of options.moreViolations ?? []) {
      if (more.spec.badRequest === undefined) continue;
      const moreValues = { ...more.params, requestId: ctx.requestId };
      const moreMessage = fillTemplate(more.spec.statusMessage ?? more.spec.message.en, moreValues);
      const moreLocalized = fillTemplate(more.spec.message[ctx.locale], moreValues);
      fieldViolations.push(fieldViolation(more.spec, moreValues, moreMessage, moreLocalized, ctx.locale));
    }
    details.push({ desc: BadRequestSchema, value: { fieldViolations } });
  }
  if (spec.resourceInfo) {
    const resourceName = fillTemplate(spec.resourceInfo.name, values);
    details.push({
      desc: ResourceInfoSchema,
      value: { resourceType: spec.resourceInfo.type, resourceName, description: message },
    });
  }
  if (spec.preconditionFailure) {
    const violation = {
      type: spec.preconditionFailure.type,
      subject: fillTemplate(spec.preconditionFailure.subject, values),
      description: message,
    };
    details.push({ desc: PreconditionFailureSchema, value: { violations: [violation] } });
  }
  if (spec.quotaFailure) {
    const violation = { subject: fillTemplate(spec.quotaFailure.subject, values), description: message };
    details.push({ desc: QuotaFailureSchema, value: { violations: [violation] } });
  }
  const retryDelayMs = options.retryDelayMs ?? (spec.retryDelayMs === "per call" ? undefined : spec.retryDelayMs);
  if (retryDelayMs !== undefined) {
    details.push({ desc: RetryInfoSchema, value: { retryDelay: durationFromMs(retryDelayMs) } });
  }
  return withoutStack(spec.code, () => new ConnectError(message, spec.code, options.headers, details, options.cause));
}

function fieldViolation(
  spec: ErrorSpec,
  values: Readonly<Record<string, string>>,
  description: string,
  localized: string,
  locale: Locale,
) {
  return {
    field: fillTemplate(spec.badRequest?.field ?? "", values),
    description,
    reason: spec.reason,
    localizedMessage: { locale, message: localized },
  };
}

/**
 * Client-class errors are expected answers, not bugs: capturing a stack trace
 * for each costs more than building the whole error and tells nothing. Server
 * errors keep theirs (and their causes keep their own).
 */
export function withoutStack<T>(code: Code, build: () => T): T {
  return codeTable[code].errorClass === "client" ? stackless(build) : build();
}

/**
 * Builds errors without capturing stack traces: for errors decoded from the
 * wire, whose stack would only show the decoder.
 */
export function stackless<T>(build: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return build();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The ErrorInfo reason of an error built here, or received with one. */
export function reasonOf(err: unknown): string | undefined {
  return err instanceof ConnectError ? err.findDetails(ErrorInfoSchema)[0]?.reason : undefined;
}

/**
 * The log entry a process uses for an error it raised itself: the one its
 * catalog entry names for that process, else `fallback`.
 */
export function logMessageFor(err: unknown, where: "api" | "gateway", fallback: LogId): LogMessage {
  const reason = reasonOf(err);
  const spec = reason === undefined ? undefined : (errorCatalog as Record<string, ErrorSpec>)[reason];
  return logMessageById(spec?.log[where] ?? fallback);
}
