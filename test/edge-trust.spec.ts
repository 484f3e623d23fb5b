import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayConfigFromEnv } from "../src/config/gateway-config.js";
import { clientAddressResolver } from "../src/gateway/client-address.js";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { timeUntil } from "./helpers/load.js";
import { freePort } from "./helpers/process.js";
import { type System, startGatewayFor, startSystem } from "./helpers/system.js";
import { callWire, closeGrpcClients } from "./helpers/wire-clients.js";

afterAll(() => closeGrpcClients());

/** A request as the resolver sees it: who connected, and what headers it sent. */
function request(peer: string, headers: Record<string, string> = {}) {
  return { socket: { remoteAddress: peer }, headers };
}

describe("the client address (TRUSTED_PROXIES)", () => {
  const behindProxies = clientAddressResolver(["10.0.0.0/8", "loopback"]);
  const trustingNobody = clientAddressResolver([]);

  it.each([
    [
      "no proxy trusted: the peer, whatever the headers say",
      trustingNobody,
      "198.51.100.7",
      "203.0.113.1",
      "198.51.100.7",
    ],
    ["an untrusted peer's X-Forwarded-For is ignored", behindProxies, "198.51.100.7", "203.0.113.1", "198.51.100.7"],
    ["a trusted peer's X-Forwarded-For names the client", behindProxies, "10.1.2.3", "203.0.113.1", "203.0.113.1"],
    [
      "hops are walked from the nearest: the first untrusted one is the client, what it claims is not",
      behindProxies,
      "127.0.0.1",
      "192.0.2.66, 203.0.113.1, 10.9.9.9",
      "203.0.113.1",
    ],
    [
      "a hop a trusted proxy cannot name ends the walk at that proxy",
      behindProxies,
      "10.1.2.3",
      "not-an-ip",
      "10.1.2.3",
    ],
    ["every hop trusted: the farthest", behindProxies, "127.0.0.1", "10.0.0.1, 10.0.0.2", "10.0.0.1"],
    ["an IPv4-mapped IPv6 peer is its IPv4 address", behindProxies, "::ffff:127.0.0.1", "203.0.113.1", "203.0.113.1"],
  ])("%s", (_, resolve, peer, xff, expected) => {
    expect(resolve(request(peer, { "x-forwarded-for": xff }))).toBe(expected);
  });

  it.each([
    ["for=203.0.113.9;proto=https", "203.0.113.9"],
    ['for="[2001:db8::1]:4711"', "2001:db8::1"],
    ['for="203.0.113.9:8080", for=10.0.0.7', "203.0.113.9"],
    ["for=unknown", "10.1.2.3"],
    ["for=_hidden", "10.1.2.3"],
    ["for=", "10.1.2.3"],
    ['for="unterminated', "10.1.2.3"],
  ])("reads Forwarded (RFC 7239) %s as %s, and prefers it to X-Forwarded-For", (forwarded, expected) => {
    expect(behindProxies(request("10.1.2.3", { forwarded, "x-forwarded-for": "198.51.100.1" }))).toBe(expected);
  });

  it("refuses a TRUSTED_PROXIES entry that is not an address or a CIDR, naming it", () => {
    expect(() => gatewayConfigFromEnv({ TRUSTED_PROXIES: "10.0.0.0/8, proxy.example" })).toThrow(
      /TRUSTED_PROXIES: "proxy.example"/,
    );
    expect(gatewayConfigFromEnv({ TRUSTED_PROXIES: "10.0.0.0/8, loopback, ::1" }).trustedProxies).toEqual([
      "10.0.0.0/8",
      "loopback",
      "::1",
    ]);
  });
});

/** HAProxy in HTTP mode, as a load balancer that adds X-Forwarded-For, in front of `target`. */
async function startForwardingProxy(target: number): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "bazbii-haproxy-"));
  const port = await freePort();
  const config = [
    "defaults",
    "  mode http",
    "  timeout connect 1s",
    "  timeout client 10s",
    "  timeout server 10s",
    "frontend edge",
    `  bind 127.0.0.1:${port}`,
    "  option forwardfor",
    "  default_backend gateway",
    "backend gateway",
    `  server gw 127.0.0.1:${target}`,
    "",
  ].join("\n");
  await writeFile(join(dir, "haproxy.cfg"), config);
  const child: ChildProcess = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: "ignore" });
  const exited = once(child, "exit");
  const url = `http://127.0.0.1:${port}`;
  await timeUntil(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200, 2_000);
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A Connect JSON Get of a post that does not exist, from a loopback address of the caller's choice. */
function getFrom(url: string, localAddress: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/bazbii.post.v1.UserPostService/Get`,
      {
        method: "POST",
        localAddress,
        agent: false,
        headers: { "content-type": "application/json", ...headers },
      },
      (res) => {
        let body = "";
        res.on("data", (chunk) => {
          body += chunk;
        });
        res.on("end", () => resolve(String((JSON.parse(body) as { code?: string }).code)));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify({ id: "no-such-post" }));
  });
}

describe("rate limits behind a trusted proxy", () => {
  const rateLimit = { windowSeconds: 60, reads: 3, writes: 100, redisUrl: undefined, redisKeyPrefix: "edge" };
  let s: System;
  let proxy: Awaited<ReturnType<typeof startForwardingProxy>>;

  beforeAll(async () => {
    // HAProxy connects from 127.0.0.1; the callers from 127.0.0.2 and 127.0.0.3, which are not trusted.
    s = await startSystem({ gateway: { rateLimit, trustedProxies: ["127.0.0.1"] } });
    proxy = await startForwardingProxy(s.gateway.port);
  });

  afterAll(async () => {
    await proxy?.stop();
    await s?.close();
  });

  it("gives two clients behind the proxy a bucket each, and a forged X-Forwarded-For changes neither", async () => {
    const first = [];
    for (let i = 0; i < 4; i++)
      first.push(await getFrom(proxy.url, "127.0.0.2", { "x-forwarded-for": `198.51.100.${i}` }));
    expect(first).toEqual(["not_found", "not_found", "not_found", "resource_exhausted"]);
    // Another client behind the same proxy still has its whole bucket.
    expect(await getFrom(proxy.url, "127.0.0.3")).toBe("not_found");
    // Straight to the gateway from an untrusted peer: its X-Forwarded-For is not believed either.
    expect(await getFrom(s.gateway.url, "127.0.0.10", { "x-forwarded-for": "127.0.0.9" })).toBe("not_found");
    expect(await getFrom(s.gateway.url, "127.0.0.10", { "x-forwarded-for": "127.0.0.8" })).toBe("not_found");
    expect(await getFrom(s.gateway.url, "127.0.0.10", { "x-forwarded-for": "127.0.0.7" })).toBe("not_found");
    expect(await getFrom(s.gateway.url, "127.0.0.10", { "x-forwarded-for": "127.0.0.6" })).toBe("resource_exhausted");
  });

  it("keys an actor's calls on the actor, wherever they come from", async () => {
    const token = await s.token("edge-actor");
    const codes = [];
    for (const from of ["127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]) {
      codes.push(await getFrom(proxy.url, from, { authorization: `Bearer ${token}` }));
    }
    expect(codes).toEqual(["not_found", "not_found", "not_found", "resource_exhausted"]);
  });
});

describe("the admin port (ADMIN_PORT, API_ADMIN_PORT)", () => {
  let s: System;

  beforeAll(async () => {
    s = await startSystem({
      gateway: { admin: { host: "127.0.0.1", port: 0 } },
      api: { admin: { host: "127.0.0.1", port: 0 } },
    });
  });

  afterAll(async () => s?.close());

  it("serves /metrics there and no longer on the public port; /healthz and /readyz on both", async () => {
    await callWire("grpc", s.gateway.url, UserPostService.method.get, { id: "counted" });
    for (const server of [s.gateway, s.api]) {
      const admin = server.adminUrl as string;
      expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const scraped = await fetch(`${admin}/metrics`);
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain("rpc_server_call_duration_seconds");
      expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
      for (const path of ["/healthz", "/readyz"]) {
        expect({ path, admin: (await fetch(`${admin}${path}`)).status }).toEqual({ path, admin: 200 });
        expect({ path, public: (await fetch(`${server.url}${path}`)).status }).toEqual({ path, public: 200 });
      }
    }
  });

  it("is read from ADMIN_PORT and ADMIN_HOST, on loopback by default", () => {
    expect(gatewayConfigFromEnv({ ADMIN_PORT: "9464" }).admin).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(gatewayConfigFromEnv({}).admin).toBeUndefined();
  });
});

describe("POST /dev/token", () => {
  const askForToken = (url: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ actor: "alice" }),
    });
  let s: System;
  let anyone: Awaited<ReturnType<typeof startGatewayFor>>;
  let off: Awaited<ReturnType<typeof startGatewayFor>>;

  beforeAll(async () => {
    // Behind a trusted proxy on loopback, the client's own address decides.
    s = await startSystem({ gateway: { trustedProxies: ["loopback"] } });
    anyone = await startGatewayFor(s.api.url, { trustedProxies: ["loopback"], devTokens: "anyone" });
    off = await startGatewayFor(s.api.url, { devTokens: "off" });
  });

  afterAll(async () => {
    await anyone?.gateway.close(0);
    await off?.gateway.close(0);
    await s?.close();
  });

  it("answers a loopback client in development, and nobody else unless DEV_TOKENS=true", async () => {
    expect((await askForToken(s.gateway.url)).status).toBe(200);
    const remote = { "x-forwarded-for": "203.0.113.5" };
    const refused = await askForToken(s.gateway.url, remote);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ message: expect.stringContaining("DEV_TOKENS=true") });
    expect(await (await fetch(`${s.gateway.url}/config.json`, { headers: remote })).json()).toEqual({
      devTokens: false,
    });
    expect((await askForToken(anyone.gateway.url, remote)).status).toBe(200);
    expect((await askForToken(off.gateway.url)).status).toBe(404);
  });

  it("never exists in production, and DEV_TOKENS=true is refused there", () => {
    const production = {
      NODE_ENV: "production",
      AUTH_JWT_SECRET: "x".repeat(40),
      INTERNAL_AUTH_SECRET: "y".repeat(40),
    };
    expect(gatewayConfigFromEnv(production).devTokens).toBe("off");
    expect(() => gatewayConfigFromEnv({ ...production, DEV_TOKENS: "true" })).toThrow(/DEV_TOKENS/);
    expect(gatewayConfigFromEnv({ DEV_TOKENS: "true" }).devTokens).toBe("anyone");
    expect(gatewayConfigFromEnv({}).devTokens).toBe("loopback");
  });
});
