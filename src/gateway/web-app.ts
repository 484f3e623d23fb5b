import { readdir, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join } from "node:path";
import { isValidSubject, mintToken } from "./auth.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

export interface WebAppConfig {
  /** Directory of the built page (npm run build writes dist/web). */
  readonly root: string;
  /** Hand out development tokens at POST /dev/token (never in production). */
  readonly devTokens: boolean;
  readonly jwtSecret: string;
}

/** Largest body POST /dev/token reads. */
const MAX_TOKEN_REQUEST_BYTES = 1024;

/**
 * The browser page, served by the gateway: the built files, read once at
 * start-up (only those files can ever be served), /config.json telling the
 * page whether development sign-in exists, and POST /dev/token.
 * Returns a handler that answers true when it served the request.
 */
export async function createWebApp(
  config: WebAppConfig,
): Promise<(req: IncomingMessage, res: ServerResponse) => boolean> {
  const assets = new Map<string, Asset>();
  const files = await readdir(config.root).catch(() => [] as string[]);
  for (const name of files) {
    const type = TYPES[extname(name)];
    if (type !== undefined) assets.set(`/${name}`, { body: await readFile(join(config.root, name)), type });
  }
  const index = assets.get("/index.html");
  if (index !== undefined) assets.set("/", index);
  const configJson = Buffer.from(JSON.stringify({ devTokens: config.devTokens }));

  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "POST" && path === "/dev/token" && config.devTokens) {
      void issueToken(req, res, config.jwtSecret);
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const asset = path === "/config.json" ? { body: configJson, type: "application/json" } : assets.get(path);
    if (asset === undefined) return false;
    res.writeHead(200, {
      "content-type": asset.type,
      "content-length": asset.body.length,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : asset.body);
    return true;
  };
}

async function issueToken(req: IncomingMessage, res: ServerResponse, secret: string): Promise<void> {
  const reply = (status: number, body: unknown): void => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };
  let raw = "";
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > MAX_TOKEN_REQUEST_BYTES) return reply(413, { message: "request too large" });
  }
  let actor: unknown;
  try {
    ({ actor } = JSON.parse(raw) as { actor?: unknown });
  } catch {
    return reply(400, { message: 'send JSON: {"actor": "<actor id>"}' });
  }
  if (typeof actor !== "string" || !isValidSubject(actor)) {
    return reply(400, { message: "actor must be 1 to 128 printable ASCII characters without spaces" });
  }
  reply(200, { token: await mintToken(secret, actor) });
}
