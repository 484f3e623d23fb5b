import { copyFile, readFile, stat, utimes, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import * as https from "node:https";
import * as tls from "node:tls";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { latLngToCell } from "h3-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserPostService } from "../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { codeTable } from "../src/shared/code-table.js";
import { startLoad, timeUntil } from "./helpers/load.js";
import { freePort, runEntryPoint } from "./helpers/process.js";
import { type System, startApi, startGatewayFor, startSystem } from "./helpers/system.js";
import { createTestPki, type IssuedCert, type TestPki } from "./helpers/test-pki.js";
import { callWire, closeGrpcClients, type Outcome, protocols, trustTestCa } from "./helpers/wire-clients.js";

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki();
  // fetch (Connect JSON, connect-web), grpc-js and connect-node all check the gateway against it.
  trustTestCa(pki.caPem);
});

afterAll(async () => {
  closeGrpcClients();
  await pki.remove();
});

/** The serial number of the certificate a new TLS connection to `url` is shown. */
function servedSerial(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ALPNProtocols: ["h2"] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on("error", reject);
  });
}

/** The same certificate's files, overwritten in place as a renewal does. */
async function renewInPlace(target: IssuedCert, next: IssuedCert): Promise<void> {
  await copyFile(next.certFile, target.certFile);
  await copyFile(next.keyFile, target.keyFile);
}

const post = { h3Index: latLngToCell(35.68, 139.76, 9), text: "over TLS" };

/** What must be the same over TLS as over h2c: everything but transport headers (the request id is the caller's). */
function comparable(outcome: Outcome): unknown {
  return outcome.ok ? { ok: true } : { ...outcome, headerText: undefined };
}

describe("TLS at the public port (TLS_CERT_FILE, TLS_KEY_FILE)", () => {
  let s: System;
  let served: IssuedCert;
  let cleartext: Awaited<ReturnType<typeof startGatewayFor>>;

  beforeAll(async () => {
    const issued = await pki.issue("gateway");
    // The gateway reads these paths; the tests overwrite them to renew.
    served = { ...issued, certFile: `${issued.certFile}.served`, keyFile: `${issued.keyFile}.served` };
    await renewInPlace(served, issued);
    s = await startSystem({ gateway: { tls: { certFile: served.certFile, keyFile: served.keyFile } } });
    cleartext = await startGatewayFor(s.api.url);
  });

  afterAll(async () => {
    await cleartext?.gateway.close(0);
    await s?.close();
  });

  it("serves https with ALPN h2 and http/1.1, TLS 1.2 at least", async () => {
    expect(s.gateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { hostname, port } = new URL(s.gateway.url);
    const negotiate = (options: tls.ConnectionOptions) =>
      new Promise<{ alpn: string | false | null; version: string | null }>((resolve, reject) => {
        const socket = tls.connect({ host: hostname, port: Number(port), ...options }, () => {
          resolve({ alpn: socket.alpnProtocol, version: socket.getProtocol() });
          socket.end();
        });
        socket.on("error", reject);
      });
    expect(await negotiate({ ALPNProtocols: ["h2", "http/1.1"] })).toEqual({ alpn: "h2", version: "TLSv1.3" });
    expect(await negotiate({ ALPNProtocols: ["http/1.1"] })).toEqual({ alpn: "http/1.1", version: "TLSv1.3" });
    expect(await negotiate({ ALPNProtocols: ["h2"], maxVersion: "TLSv1.2" })).toEqual({
      alpn: "h2",
      version: "TLSv1.2",
    });
    await expect(
      negotiate({ maxVersion: "TLSv1.1", minVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" }),
    ).rejects.toThrow();
  });

  it.each([
    ["Get of an unknown post (not_found)", "get"],
    ["Create with an invalid cell (invalid_argument, every violation)", "create"],
    ["Delete without a token (unauthenticated)", "delete"],
  ] as const)("answers %s in every protocol with the same code, message and details as over h2c", async (_, call) => {
    for (const protocol of protocols) {
      const outcomes: unknown[] = [];
      for (const base of [s.gateway.url, cleartext.gateway.url]) {
        const headers = { "x-request-id": `tls-${protocol}-${call}` };
        const outcome =
          call === "get"
            ? await callWire(protocol, base, UserPostService.method.get, { id: "no-such-post" }, { headers })
            : call === "create"
              ? await callWire(
                  protocol,
                  base,
                  UserPostService.method.create,
                  { h3Index: "nonsense", text: "" },
                  { headers: { ...headers, authorization: `Bearer ${await s.token("alice")}` } },
                )
              : await callWire(protocol, base, UserPostService.method.delete, { id: "x" }, { headers });
        outcomes.push({ protocol, ...(comparable(outcome) as object) });
      }
      expect(outcomes[0]).toMatchObject({ protocol, ok: false });
      expect(outcomes[0]).toEqual(outcomes[1]);
    }
  });

  it("serves Connect over HTTP/2 and HTTP/1.1 and gRPC-Web to connect-node clients that check it against the CA", async () => {
    const ca = pki.caPem;
    const transports = {
      "connect h2": createConnectTransport({ baseUrl: s.gateway.url, httpVersion: "2", nodeOptions: { ca } }),
      "connect http/1.1": createConnectTransport({ baseUrl: s.gateway.url, httpVersion: "1.1", nodeOptions: { ca } }),
      "grpc-web http/1.1": createGrpcWebTransport({ baseUrl: s.gateway.url, httpVersion: "1.1", nodeOptions: { ca } }),
    };
    const token = await s.token("alice");
    for (const [name, transport] of Object.entries(transports)) {
      const client = createClient(UserPostService, transport);
      const headers = { authorization: `Bearer ${token}` };
      const created = await client.create({ ...post, requestId: crypto.randomUUID() }, { headers });
      const read = await client.get({ id: created.id });
      expect({ name, text: read.post?.text }).toEqual({ name, text: post.text });
      const missing = await client.get({ id: "no-such-post" }).catch((err: unknown) => ConnectError.from(err));
      expect({ name, code: missing instanceof ConnectError ? codeTable[missing.code].name : "ok" }).toEqual({
        name,
        code: "not_found",
      });
    }
  });

  it("picks up a renewed certificate under load with no failed call, and keeps open connections", async () => {
    const before = await servedSerial(s.gateway.url);
    // A connection opened before the renewal: it keeps its certificate and goes on serving.
    const session = http2.connect(s.gateway.url, { ca: pki.caPem });
    const healthz = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ":path": "/healthz" });
        stream.on("response", (headers) => resolve(Number(headers[":status"])));
        stream.on("error", reject);
        stream.resume();
        stream.end();
      });
    expect(await healthz()).toBe(200);

    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => s.token(`tls-load-${i}`)));
    const load = startLoad(s.gateway.url, tokens, { ca: pki.caPem });
    const renewed: string[] = [];
    try {
      await timeUntil(async () => load.calls() >= 100, 5_000);
      for (let round = 0; round < 3; round++) {
        const next = await pki.issue("gateway");
        await renewInPlace(served, next);
        await timeUntil(async () => (await servedSerial(s.gateway.url)) === next.serial, 2_000);
        renewed.push(next.serial);
        const atRenewal = load.calls();
        await timeUntil(async () => load.calls() >= atRenewal + 100, 5_000);
      }
    } finally {
      const result = await load.stop();
      expect(result.failures).toEqual([]);
      expect(result.calls).toBeGreaterThan(400);
    }
    expect(renewed).toHaveLength(3);
    expect(renewed).not.toContain(before);
    expect(await healthz()).toBe(200);
    expect((session.socket as tls.TLSSocket).getPeerCertificate().serialNumber).toBe(before);
    session.close();
    expect(s.gatewayLogs.withLogId("SYS_005").length).toBeGreaterThanOrEqual(3);
  });

  it("keeps the certificate in use when the renewed files cannot be used, and says so (SYS_006)", async () => {
    const before = await servedSerial(s.gateway.url);
    const goodCert = await readFile(served.certFile);
    const failedBefore = s.gatewayLogs.withLogId("SYS_006").length;
    await writeFile(served.certFile, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
    await timeUntil(async () => s.gatewayLogs.withLogId("SYS_006").length > failedBefore, 2_000);
    expect(s.gatewayLogs.withLogId("SYS_006").at(-1)).toMatchObject({ level: "error" });
    expect(await servedSerial(s.gateway.url)).toBe(before);
    const outcome = await callWire("grpc", s.gateway.url, UserPostService.method.get, { id: "still-served" });
    expect(outcome).toMatchObject({ ok: false, code: "not_found" });
    await writeFile(served.certFile, goodCert);
  });
});

describe("SIGHUP", () => {
  it("makes the gateway process read its certificate again at once", async () => {
    const api = await startApi();
    const first = await pki.issue("gateway");
    const next = await pki.issue("gateway");
    const port = await freePort();
    const gateway = runEntryPoint("start-gateway", {
      NODE_ENV: "test",
      GATEWAY_PORT: String(port),
      API_URL: api.api.url,
      TLS_CERT_FILE: first.certFile,
      TLS_KEY_FILE: first.keyFile,
    });
    try {
      await gateway.waitForLine((l) => l.log_id === "SYS_001", 15_000);
      const url = `https://127.0.0.1:${port}`;
      expect(await servedSerial(url)).toBe(first.serial);
      // Renewed in place with the old modification times: only SIGHUP can tell the gateway.
      const times = await Promise.all([stat(first.certFile), stat(first.keyFile)]);
      await renewInPlace(first, next);
      await utimes(first.certFile, times[0].atime, times[0].mtime);
      await utimes(first.keyFile, times[1].atime, times[1].mtime);
      gateway.child.kill("SIGHUP");
      await gateway.waitForLine((l) => l.log_id === "SYS_005", 5_000);
      expect(await servedSerial(url)).toBe(next.serial);
    } finally {
      gateway.child.kill("SIGTERM");
      expect(await gateway.exited()).toBe(0);
      await api.api.close(0);
      await api.cleanup();
    }
  });
});

describe("mutual TLS between the gateway and the API servers", () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  let gateway: Awaited<ReturnType<typeof startGatewayFor>>;
  let apiCert: IssuedCert;

  beforeAll(async () => {
    apiCert = await pki.issue("api");
    const client = await pki.issue("gateway-client");
    api = await startApi({
      api: { tls: { certFile: apiCert.certFile, keyFile: apiCert.keyFile, clientCaFile: pki.caFile } },
    });
    gateway = await startGatewayFor(api.api.url, {
      upstream: { pool: { tls: { caFile: pki.caFile, certFile: client.certFile, keyFile: client.keyFile } } },
    });
  });

  afterAll(async () => {
    await gateway?.gateway.close(0);
    await api?.api.close(0);
    await api?.cleanup();
  });

  it("relays every protocol to an https API server that requires the gateway's client certificate", async () => {
    expect(api.api.url).toMatch(/^https:/);
    const token = await gateway.token("alice");
    for (const protocol of protocols) {
      const created = await callWire(
        protocol,
        gateway.gateway.url,
        UserPostService.method.create,
        { ...post, requestId: crypto.randomUUID() },
        { headers: { authorization: `Bearer ${token}` } },
      );
      expect({ protocol, ok: created.ok }).toEqual({ protocol, ok: true });
      const missing = await callWire(protocol, gateway.gateway.url, UserPostService.method.get, { id: "nope" });
      expect({ protocol, ...missing }).toMatchObject({ protocol, ok: false, code: "not_found" });
    }
  });

  it.each([
    ["no client certificate", {}],
    ["a client certificate from another CA", "other-ca"],
  ] as const)("refuses a client with %s before any request is read", async (_, kind) => {
    let options: https.RequestOptions = { ca: pki.caPem };
    if (kind === "other-ca") {
      const other = await createTestPki("another CA");
      const stranger = await other.issue("stranger");
      options = { ...options, cert: await readFile(stranger.certFile), key: await readFile(stranger.keyFile) };
      await other.remove();
    }
    const callsBefore = api.logs.lines.length;
    const { hostname, port } = new URL(api.api.url);
    const outcome = await new Promise<string>((resolve) => {
      const req = https.request(
        {
          ...options,
          host: hostname,
          port,
          method: "POST",
          path: "/bazbii.post.v1.UserPostService/Delete",
          headers: { "content-type": "application/json", "x-bazbii-actor-id": "alice" },
        },
        (res) => resolve(`answered ${res.statusCode}`),
      );
      req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      req.end(JSON.stringify({ id: "x" }));
    });
    expect(outcome).not.toMatch(/^answered/);
    expect(outcome).toMatch(/ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED|ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|ECONNRESET/);
    expect(api.logs.lines.slice(callsBefore)).toEqual([]);
  });

  it("still requires the gateway's assertion from a client with a good certificate", async () => {
    const client = await pki.issue("direct-client");
    const [cert, key] = await Promise.all([readFile(client.certFile), readFile(client.keyFile)]);
    const outcome = await directCall(api.api.url, { ca: pki.caPem, cert, key });
    expect(outcome.status).toBe(401);
    expect(JSON.parse(outcome.body)).toMatchObject({ code: "unauthenticated" });
    expect(api.logs.withLogId("REQ_004").length).toBeGreaterThan(0);
  });
});

/** A Delete straight to the API server's port, as an attacker inside the network would send it. */
function directCall(url: string, options: https.RequestOptions): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        ...options,
        host: hostname,
        port,
        method: "POST",
        path: "/bazbii.post.v1.UserPostService/Delete",
        headers: { "content-type": "application/json", "x-bazbii-actor-id": "alice" },
      },
      (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify({ id: "x" }));
  });
}
