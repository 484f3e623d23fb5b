import { readdir, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join } from "node:path";
import type { DevTokens } from "../config/gateway-config.js";
import { type StaticAsset, sendAsset } from "../shared/http/static-asset.js";
import { isValidSubject, mintToken, type TokenConfig } from "./auth.js";
import type { ClientAddressOf } from "./client-address.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

export interface WebAppConfig {
  /** Directory of the built page (npm run build writes dist/web). */
  readonly root: string;
  /** Who gets development tokens at POST /dev/token (never anyone in production). */
  readonly devTokens: DevTokens;
  /** The tokens the gateway accepts: development ones are signed to pass them. */
  readonly tokens: TokenConfig;
  /** The caller's address through trusted proxies: the loopback check looks at the client, not at a proxy. */
  readonly clientAddressOf: ClientAddressOf;
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
  const assets = new Map<string, StaticAsset>();
  const files = await readdir(config.root).catch(() => [] as string[]);
  for (const name of files) {
    const type = TYPES[extname(name)];
    if (type !== undefined) assets.set(`/${name}`, { body: await readFile(join(config.root, name)), type });
  }
  const index = assets.get("/index.html");
  if (index !== undefined) assets.set("/", index);
  const configJson = (devTokens: boolean) => ({
    body: Buffer.from(JSON.stringify({ devTokens })),
    type: "application/json",
  });
  // Tokens that sign in as anyone: for the developer at this machine, or for
  // anyone when DEV_TOKENS=true says so; a provider's tokens make them useless.
  const mayMint = (req: IncomingMessage): boolean =>
    config.tokens.jwksUrl === undefined &&
    (config.devTokens === "anyone" || (config.devTokens === "loopback" && isLoopback(config.clientAddressOf(req))));

  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "POST" && path === "/dev/token") {
      if (mayMint(req)) void issueToken(req, res, config.tokens);
      else refuseToken(res, config.devTokens === "loopback" && config.tokens.jwksUrl === undefined);
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const asset = path === "/config.json" ? configJson(mayMint(req)) : assets.get(path);
    if (asset === undefined) return false;
    sendAsset(req, res, asset);
    return true;
  };
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
function isLoopback(address: string): boolean {
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}

/** 403 to a remote client where only loopback ones get tokens; 404 where there are none at all. */
function refuseToken(res: ServerResponse, loopbackOnly: boolean): void {
  res.writeHead(loopbackOnly ? 403 : 404, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(
    JSON.stringify({
      message: loopbackOnly
        ? "development tokens are handed out to clients on this machine only (DEV_TOKENS=true hands them out to anyone)"
        : "development tokens are not handed out here",
    }),
  );
}

async function issueToken(req: IncomingMessage, res: ServerResponse, tokens: TokenConfig): Promise<void> {
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
  reply(200, { token: await mintToken(tokens.hs256Secret, actor, undefined, tokens) });
}
