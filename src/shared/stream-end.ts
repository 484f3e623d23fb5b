import type { StreamResponse, UnaryResponse } from "@connectrpc/connect";

type AnyResponse = UnaryResponse | StreamResponse;

export interface EndWatch {
  /** Called once, with the error the call ended with (undefined for success). */
  readonly ended: (err: unknown) => void;
  /** An error thrown mid-stream becomes the one it returns, which the caller receives. */
  readonly mapError?: (err: unknown) => unknown;
  /** The call's signal: its reason is how a stream its caller stopped reading ended. */
  readonly aborted?: AbortSignal;
  /** Called for each message of a stream, once it was handed on. */
  readonly sent?: () => void;
}

/**
 * An interceptor's view of when a call ends: at once for a unary answer,
 * after its last message for a server stream.
 */
export function whenEnded<R extends AnyResponse>(res: R, watch: EndWatch): R {
  if (!res.stream) {
    watch.ended(undefined);
    return res;
  }
  const messages = res.message as AsyncIterable<unknown>;
  async function* watched(): AsyncGenerator<unknown> {
    let outcome: { err: unknown } | undefined;
    try {
      for await (const message of messages) {
        yield message;
        watch.sent?.();
      }
      outcome = { err: undefined };
    } catch (thrown) {
      outcome = { err: watch.mapError === undefined ? thrown : watch.mapError(thrown) };
      throw outcome.err;
    } finally {
      // Neither finished nor failed: the caller stopped reading.
      watch.ended(
        outcome === undefined ? (watch.aborted?.reason ?? new Error("stream closed by its caller")) : outcome.err,
      );
    }
  }
  return { ...res, message: watched() } as R;
}
