import { Code, ConnectError } from "@connectrpc/connect";
import { RETRY_DEFAULTS } from "../shared/retry-rules.js";
import { markedNotProcessed, pushbackOf, refusedBeforeSending } from "./pushback.js";

export interface ResubscribeEvent {
  /** Times in a row the stream ended without a message since the last one that delivered. */
  readonly attempt: number;
  readonly error: ConnectError;
  /** How long the client waits before opening it again. */
  readonly delayMs: number;
}

export interface ResubscribeOptions {
  /** Ends the watch; the stream open then is canceled. */
  readonly signal?: AbortSignal;
  readonly initialBackoffMs?: number;
  /** Longest wait between attempts (the server's RetryInfo may ask for longer). */
  readonly maxBackoffMs?: number;
  /** Uniform random numbers in [0, 1), for the ±20% jitter. */
  readonly random?: () => number;
  /** Called when the stream ended and is about to be opened again (say "reconnecting…"). */
  readonly onResubscribe?: (event: ResubscribeEvent) => void;
}

/**
 * Codes after which a watch is opened again: the server or the path went away
 * (unavailable: draining, the longest duration reached, an API server lost),
 * a limit that RetryInfo says when to try again (resource_exhausted), or the
 * stream's own deadline. Never a request that is wrong (invalid_argument) or
 * not allowed: those end the watch with the error.
 */
const RESUBSCRIBE_CODES: ReadonlySet<Code> = new Set([
  Code.Unavailable,
  Code.ResourceExhausted,
  Code.DeadlineExceeded,
  Code.Aborted,
]);

/**
 * A server stream that is opened again whenever it ends for a reason that
 * passes (a server draining or restarting, a stream ended at its longest
 * duration, a lost connection), for as long as `signal` lets it: after the
 * server's RetryInfo, or an exponential backoff with jitter (100 ms, ×2, at
 * most 5 s) that starts again once a stream delivered. Made for streams whose
 * first message is a snapshot (WatchHeatmap): each new stream starts with one
 * that replaces what was received, so nothing is lost across a resumption.
 *
 * `open` opens the stream (with connect-node or connect-web, any protocol) and
 * must pass the signal it is given on to the call.
 */
export async function* resubscribing<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  options: ResubscribeOptions = {},
): AsyncGenerator<T> {
  const initialBackoffMs = options.initialBackoffMs ?? RETRY_DEFAULTS.initialBackoffMs;
  const maxBackoffMs = options.maxBackoffMs ?? 5_000;
  const random = options.random ?? Math.random;
  let failures = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const call = new AbortController();
    const stop = () => call.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const message of open(call.signal)) {
        failures = 0;
        yield message;
      }
      return; // the server ended it: nothing more to watch
    } catch (thrown) {
      if (options.signal?.aborted) throw options.signal.reason;
      const error = ConnectError.from(thrown);
      if (!RESUBSCRIBE_CODES.has(error.code) && !markedNotProcessed(error) && !refusedBeforeSending(error)) {
        throw error;
      }
      failures++;
      const pushback = pushbackOf(error);
      if (pushback?.kind === "stop") throw error;
      const backoff = Math.min(initialBackoffMs * 2 ** (failures - 1), maxBackoffMs) * (0.8 + 0.4 * random());
      const delayMs = pushback?.ms ?? backoff; // the server's word first
      options.onResubscribe?.({ attempt: failures, error, delayMs });
      await wait(delayMs, options.signal);
    } finally {
      options.signal?.removeEventListener("abort", stop);
      call.abort();
    }
  }
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
