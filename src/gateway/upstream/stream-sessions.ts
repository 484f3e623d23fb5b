import type * as tls from "node:tls";
import type { DescMessage, DescMethodServerStreaming, MessageInitShape } from "@bufbuild/protobuf";
import type { StreamResponse, Transport } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

/** Streams one HTTP/2 session to an API server carries at most (its MAX_CONCURRENT_STREAMS is 250 by default). */
const STREAMS_PER_SESSION = 100;

interface Session {
  readonly manager: Http2SessionManager;
  readonly transport: Transport;
  open: number;
}

export interface StreamCallOptions {
  /** Ends the stream; the session slot is given back then at the latest. */
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly headers: Headers;
}

/**
 * The HTTP/2 sessions that carry server streams to one endpoint, apart from
 * the session of its unary calls: a thousand long-lived watches neither take
 * the stream slots unary calls need nor go past the API server's limit of
 * streams per connection. A session takes up to STREAMS_PER_SESSION; more
 * open more sessions, and sessions left empty are closed (the first stays).
 */
export class StreamSessions {
  readonly #sessions: Session[] = [];
  readonly #open: () => Session;

  constructor(baseUrl: string, protocol: "connect" | "grpc", tlsOptions: tls.ConnectionOptions) {
    this.#open = () => {
      const manager = new Http2SessionManager(baseUrl, undefined, tlsOptions);
      const options = { baseUrl, httpVersion: "2" as const, sessionManager: manager };
      const transport =
        protocol === "grpc"
          ? createGrpcTransport(options)
          : createConnectTransport({ ...options, useBinaryFormat: true });
      return { manager, transport, open: 0 };
    };
  }

  /** Streams open now, on every session. */
  get open(): number {
    return this.#sessions.reduce((sum, s) => sum + s.open, 0);
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    input: MessageInitShape<I>,
    { signal, timeoutMs, headers }: StreamCallOptions,
  ): Promise<StreamResponse<I, O>> {
    let session = this.#sessions.find((s) => s.open < STREAMS_PER_SESSION);
    if (session === undefined) {
      session = this.#open();
      this.#sessions.push(session);
    }
    const taken = session;
    taken.open++;
    let given = false;
    const giveBack = (): void => {
      if (given) return;
      given = true;
      taken.open--;
      signal.removeEventListener("abort", giveBack);
      // An empty session beyond the first one is not kept for the next burst of watches.
      if (taken.open === 0 && this.#sessions[0] !== taken) {
        this.#sessions.splice(this.#sessions.indexOf(taken), 1);
        taken.manager.abort();
      }
    };
    signal.addEventListener("abort", giveBack, { once: true });
    try {
      const response = await taken.transport.stream(method, signal, timeoutMs, headers, createAsyncIterable([input]));
      return { ...response, message: givingBackAtEnd(response.message, giveBack) };
    } catch (err) {
      giveBack();
      throw err;
    }
  }

  close(): void {
    for (const session of this.#sessions.splice(0)) session.manager.abort();
  }
}

async function* givingBackAtEnd<T>(messages: AsyncIterable<T>, giveBack: () => void): AsyncGenerator<T> {
  try {
    yield* messages;
  } finally {
    giveBack();
  }
}
