import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

export type PeerBehaviour = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/**
 * A real HTTP/2 (h2c) server standing where the API server should be, doing
 * whatever a test tells it: hanging, resetting, answering with HTML or garbage.
 * It records the headers of every request it gets.
 */
export async function startFakeUpstream(behaviour: PeerBehaviour): Promise<{
  url: string;
  requests: http2.IncomingHttpHeaders[];
  close(): Promise<void>;
}> {
  const requests: http2.IncomingHttpHeaders[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    requests.push(headers);
    stream.on("error", () => {});
    behaviour(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
