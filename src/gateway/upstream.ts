import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

export type UpstreamProtocol = "connect" | "grpc";

export interface UpstreamConfig {
  /** Where the API server listens, e.g. http://127.0.0.1:8081 (h2c). */
  readonly baseUrl: string;
  /** Connect (binary) or gRPC, both over one multiplexed HTTP/2 connection. */
  readonly protocol: UpstreamProtocol;
}

export interface UpstreamCallOptions {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly headers: Headers;
}

/** The API server, seen from the gateway: unary calls over one h2c session. */
export interface Upstream {
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    options: UpstreamCallOptions,
  ): Promise<MessageShape<O>>;
  close(): void;
}

export function createUpstream(config: UpstreamConfig): Upstream {
  const sessionManager = new Http2SessionManager(config.baseUrl);
  const options = { baseUrl: config.baseUrl, httpVersion: "2" as const, sessionManager };
  const transport: Transport =
    config.protocol === "grpc"
      ? createGrpcTransport(options)
      : createConnectTransport({ ...options, useBinaryFormat: true });
  return {
    async call(method, input, { signal, timeoutMs, headers }) {
      const response = await transport.unary(method, signal, timeoutMs, headers, input);
      return response.message;
    },
    close() {
      sessionManager.abort();
    },
  };
}
