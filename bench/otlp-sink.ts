import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A collector stand-in for the traced stack: an OTLP/HTTP endpoint that reads
 * every export and accepts it (an empty ExportTraceServiceResponse), so the
 * servers pay for tracing exactly what they would with a real collector that
 * keeps up. It runs in the bench's process, whose CPU the rows report as the
 * load generator's; the spans it counts show the exports really happened.
 */
export async function startOtlpSink(): Promise<{ url: string; exportedBytes(): number; close(): void }> {
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on("end", () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exportedBytes: () => bytes,
    close: () => server.close(),
  };
}
