import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createRetryInterceptor, type RetryOptions } from "./retry-interceptor.js";

export interface NodeClientOptions {
  /** The gateway, e.g. http://127.0.0.1:8080. */
  readonly baseUrl: string;
  /** Connect (JSON or binary over HTTP/1.1 or h2c), gRPC (h2c) or gRPC-Web. */
  readonly protocol?: "connect" | "grpc" | "grpc-web";
  readonly httpVersion?: "1.1" | "2";
  readonly retry?: RetryOptions;
}

/** A retry-aware client for Node.js backends: connect-node plus the retry interceptor. */
export function createNodeClient<S extends DescService>(service: S, options: NodeClientOptions): Client<S> {
  const interceptors = [createRetryInterceptor(options.retry)];
  const base = { baseUrl: options.baseUrl, interceptors };
  const transport =
    options.protocol === "grpc"
      ? createGrpcTransport(base)
      : options.protocol === "grpc-web"
        ? createGrpcWebTransport({ ...base, httpVersion: options.httpVersion ?? "1.1" })
        : createConnectTransport({ ...base, httpVersion: options.httpVersion ?? "1.1" });
  return createClient(service, transport);
}
