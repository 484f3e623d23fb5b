import type { IncomingMessage, ServerResponse } from "node:http";

/** A file served from memory: read once at start-up, so only what was read can ever be served. */
export interface StaticAsset {
  readonly body: Buffer;
  /** Its content type. */
  readonly type: string;
}

/** Answers a GET or HEAD with the asset, revalidated at every load, never sniffed as another type. */
export function sendAsset(req: IncomingMessage, res: ServerResponse, asset: StaticAsset): void {
  res.writeHead(200, {
    "content-type": asset.type,
    "content-length": asset.body.length,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : asset.body);
}
