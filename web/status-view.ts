import { Code, ConnectError } from "@connectrpc/connect";
import type { RetryEvent } from "../src/client/retry-interceptor.js";
import { BadRequestSchema, LocalizedMessageSchema, RequestInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { codeTable } from "../src/shared/code-table.js";
import { t } from "./labels.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** What a person needs from a failed call: the message in their language, the code, the request id to quote. */
export function describeError(thrown: unknown): { message: string; code: string; requestId: string } {
  const err = ConnectError.from(thrown);
  const localized = err.findDetails(LocalizedMessageSchema)[0]?.message;
  const requestId = err.findDetails(RequestInfoSchema)[0]?.requestId ?? err.metadata.get("x-request-id") ?? "";
  // A failure before any answer (offline, refused) has no message from the server: say so plainly.
  const fallback = err.code === Code.Unavailable || err.code === Code.Unknown ? t("unreachable") : err.rawMessage;
  return { message: localized ?? fallback, code: codeTable[err.code].name, requestId };
}

/** BadRequest field violations, by request field, in the caller's language. */
export function fieldErrors(thrown: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!(thrown instanceof ConnectError)) return out;
  for (const violation of thrown.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []) {
    out.set(violation.field, violation.localizedMessage?.message ?? violation.description);
  }
  return out;
}

let countdown: ReturnType<typeof setInterval> | undefined;

function show(kind: "ok" | "error" | "retrying", message: string, code = "", requestId = ""): void {
  clearInterval(countdown);
  const box = $("status");
  box.hidden = false;
  box.className = `status ${kind}`;
  $("status-message").textContent = message;
  $("status-code").textContent = code || "—";
  $("status-request-id").textContent = requestId || "—";
}

export function showSuccess(message: string): void {
  show("ok", message);
}

export function showError(thrown: unknown): void {
  const { message, code, requestId } = describeError(thrown);
  show("error", message, code, requestId);
}

/** A retry under way: what failed, and a countdown to the next attempt. */
export function showRetry(event: RetryEvent): void {
  const { message, code, requestId } = describeError(event.error);
  const until = Date.now() + event.delayMs;
  const render = (): void => {
    const left = Math.max(0, until - Date.now()) / 1000;
    $("status-message").textContent = t("retrying", { message, attempt: event.attempt + 1, seconds: left.toFixed(1) });
  };
  show("retrying", "", code, requestId);
  render();
  countdown = setInterval(render, 100);
}
