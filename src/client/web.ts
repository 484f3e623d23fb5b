import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createRetryInterceptor, type RetryOptions } from "./retry-interceptor.js";

export interface WebClientOptions {
  /** The gateway: "" or "/" for the page's own origin, else e.g. https://api.example. */
  readonly baseUrl: string;
  /** Connect JSON (the default: readable in devtools) or gRPC-Web. */
  readonly protocol?: "connect" | "grpc-web";
  readonly retry?: RetryOptions;
}

/** A retry-aware client for browsers: connect-web plus the retry interceptor. */
export function createWebClient<S extends DescService>(service: S, options: WebClientOptions): Client<S> {
  const interceptors = [createRetryInterceptor(options.retry)];
  const transport =
    options.protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl: options.baseUrl, interceptors })
      : createConnectTransport({ baseUrl: options.baseUrl, interceptors });
  return createClient(service, transport);
}
