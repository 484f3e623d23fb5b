import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type DomainError, findDomainError } from "../domain/errors.js";
import type { DomainEvent } from "../domain/event-publisher.js";
import type { CreationFailedEvent } from "../domain/post/post-events.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import type { ErrorSpec } from "../shared/errors/error-spec.js";
import { logMessageFor, publicError, reasonOf } from "../shared/errors/public-error.js";
import { type LogMessage, logmsg } from "../shared/logging/log-catalog.js";
import { type RequestContext, requestContextOf } from "../shared/request-context.js";
import { whenEnded } from "../shared/stream-end.js";
import { domainErrorMapping } from "./domain-error-mapping.js";
import { recordingEvents } from "./event-recorder.js";

/** Failure events are logged under their own IDs instead of REQ_003 (seed: the service layer logs them). */
const failureEventLogIds: Readonly<Record<string, LogMessage>> = {
  "post.CreationFailedEvent": logmsg.PostCreationFailed,
};

/**
 * THE application boundary: every error leaving the API server passes here
 * once, becomes a public error (code, message, details) and is logged once
 * under a stable ID. Anything not mapped becomes `internal` with a generic
 * message; its cause goes to the log only.
 */
export function createErrorBoundary(): Interceptor {
  return (next) => async (req) => {
    const events: DomainEvent[] = [];
    const rc = requestContextOf(req.contextValues);
    const fail = (thrown: unknown): ConnectError => {
      const err = toPublicError(thrown, rc, req.signal);
      logFailure(rc, err, events);
      return err;
    };
    try {
      const res = await recordingEvents({ events, request: rc }, () => next(req));
      // A stream's error comes while it is read, after this returned.
      return whenEnded(res, { ended() {}, mapError: fail });
    } catch (thrown) {
      throw fail(thrown);
    }
  };
}

function toPublicError(thrown: unknown, rc: RequestContext, signal: AbortSignal): ConnectError {
  const domainError = findDomainError(thrown);
  if (domainError !== undefined) {
    const spec = specOf(domainError);
    if (spec !== undefined) {
      const moreViolations = domainError.others.flatMap((other) => {
        const otherSpec = specOf(other);
        return otherSpec === undefined ? [] : [{ spec: otherSpec, params: other.context }];
      });
      return publicError(spec, rc, { params: domainError.context, cause: thrown, moreViolations });
    }
  }
  if (thrown instanceof ConnectError && reasonOf(thrown) !== undefined) return thrown; // already public
  if (signal.aborted) {
    // The caller gave up or the deadline passed while we worked; say which.
    const reason = ConnectError.from(signal.reason);
    const spec = reason.code === Code.DeadlineExceeded ? errorCatalog.DEADLINE_EXCEEDED : errorCatalog.CANCELED;
    return publicError(spec, rc, { cause: thrown });
  }
  return publicError(errorCatalog.INTERNAL, rc, { cause: thrown });
}

function specOf(err: DomainError): ErrorSpec | undefined {
  return domainErrorMapping[err.reason as keyof typeof domainErrorMapping];
}

function logFailure(rc: RequestContext, err: ConnectError, events: readonly DomainEvent[]): void {
  const reason = reasonOf(err);
  const failure = events.find((e) => failureEventLogIds[e.name] !== undefined);
  if (failure !== undefined) {
    const { reason: eventReason } = failure as CreationFailedEvent;
    failureEventLogIds[failure.name]?.emitError(rc.log, err, {
      reason,
      event: failure.name,
      event_reason: eventReason,
    });
    return;
  }
  logMessageFor(err, "api", logmsg.RequestFailed.id).emitError(rc.log, err, { reason });
}
