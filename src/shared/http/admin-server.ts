import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Readiness } from "../health.js";
import type { RpcMetrics } from "../metrics/rpc-metrics.js";
import { servePlainRoutes } from "./plain-routes.js";

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly readiness: Readiness;
  readonly metrics: RpcMetrics;
}

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The operators' port (ADMIN_PORT, on loopback unless ADMIN_HOST says
 * otherwise): /metrics, which then leaves the public port, and /healthz and
 * /readyz, which stay on both. Plain HTTP/1.1: scrapers and probes speak it.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) =>
    servePlainRoutes(req, res, { readiness: options.readiness, metrics: options.metrics }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
