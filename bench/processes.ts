import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as tlsModule from "node:tls";
import { promisify } from "node:util";
import { haproxyConfig } from "../src/cluster/haproxy.js";

// The processes the loads cross: our servers, started from dist/cmd as their
// npm scripts start them, and nginx as the reference hop; and what /proc says
// about their CPU and memory.

const run = promisify(execFile);

/** A server the bench started: its name in the table and results.json, where it listens, its pid. */
export interface Server {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number;
}

/** nginx's two listeners in front of one API server. */
export interface Nginx {
  /** `proxy_pass` over kept-alive HTTP/1.1, for Connect. */
  readonly connectUrl: string;
  /** `grpc_pass` over h2c, for gRPC. */
  readonly grpcUrl: string;
}

/** A certificate for 127.0.0.1 signed by the bench's own CA, usable by servers and as a client certificate. */
export interface BenchTls {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface StackOptions {
  /** The API servers' PostgreSQL; each has an embedded PGlite of its own when undefined. */
  readonly databaseUrl: string | undefined;
  /** The gateway's UPSTREAM_PROTOCOL. */
  readonly upstreamProtocol: string;
}

/**
 * The Node flags `npm run start:api` and `npm run start:gateway` run with
 * (package.json's config): both keep memory bounded with a small young
 * generation and slow old-generation growth; each keeps V8's garbage collector
 * from taking a core away from the call path in its own way (bench/README.md).
 */
const config = JSON.parse(await readFile("package.json", "utf8")).config;
const nodeFlags: Record<"start-api" | "start-gateway", string[]> = {
  "start-api": config.api_node_flags.split(" "),
  "start-gateway": config.gateway_node_flags.split(" "),
};

/** The internal assertion's secret of every server the bench starts, for its direct calls to sign with. */
export const INTERNAL_AUTH_SECRET = "bench-internal-secret-bench-internal-secret!";

/** The bearer tokens' secret of every gateway the bench starts. */
export const AUTH_JWT_SECRET = "bench-secret-bench-secret-bench-secret!";

const production = {
  NODE_ENV: "production",
  LOG_LEVEL: "info",
  AUTH_JWT_SECRET,
  INTERNAL_AUTH_SECRET,
  // The load comes from one address: the benchmark measures the hop, not the rate limiter.
  RATE_LIMIT_READS: "100000000",
  RATE_LIMIT_WRITES: "100000000",
  // The fan-out's thousand watchers come from one caller too.
  MAX_STREAMS_PER_CALLER: "100000",
};

/** Every process the bench starts, so that all of them are stopped however the run ends. */
export class Processes {
  readonly #dir: string;
  readonly #options: StackOptions;
  readonly #children: ChildProcess[] = [];

  /** `dir` holds the processes' files (PGlite's data, nginx's configuration) and is removed by the caller. */
  constructor(dir: string, options: StackOptions) {
    this.#dir = dir;
    this.#options = options;
  }

  /**
   * An API server, healthy. Start them one at a time: with PostgreSQL they
   * all migrate the same database.
   */
  apiServer(name: string, logLevel: string, tls?: BenchTls, env: Record<string, string> = {}): Promise<Server> {
    const { databaseUrl } = this.#options;
    return this.#node(
      name,
      "start-api",
      (port) => ({
        ...production,
        ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
        // Every loopback address reaches it: a gateway can list it as several endpoints.
        HOST: "0.0.0.0",
        LOG_LEVEL: logLevel,
        API_PORT: String(port),
        DATA_DIR: join(this.#dir, `data-${port}`),
        // Mutual TLS: only a client with a certificate from the bench's CA gets through.
        ...(tls === undefined
          ? {}
          : { API_TLS_CERT_FILE: tls.certFile, API_TLS_KEY_FILE: tls.keyFile, API_TLS_CLIENT_CA_FILE: tls.caFile }),
        ...env,
      }),
      tls,
    );
  }

  /**
   * An API server on embedded PGlite whatever the bench's database, on a
   * fresh data directory (its first start creates the database), with
   * PGLITE_SETTINGS `settings`: what `npm start` gives a newcomer.
   */
  embeddedApiServer(name: string, settings: "small" | "pglite"): Promise<Server> {
    return this.#node(name, "start-api", (port) => ({
      ...production,
      API_PORT: String(port),
      DATA_DIR: join(this.#dir, `data-${port}`),
      PGLITE_SETTINGS: settings,
    }));
  }

  /**
   * A gateway in front of `api`, healthy; with `endpoints` > 1, `api` is its
   * endpoint that many times, each at another loopback address (127.0.0.n):
   * the gateway balances, watches and pools as for that many API servers,
   * whose work is the one server's. With `tls`, HTTPS at its public port and
   * mutual TLS to `api` (which must have been started with the same files).
   * `env` adds to, or overrides, its environment.
   */
  gateway(
    name: string,
    logLevel: string,
    api: Server,
    options: { endpoints?: number; tls?: BenchTls; env?: Record<string, string> } = {},
  ): Promise<Server> {
    const { endpoints = 1, tls, env = {} } = options;
    const scheme = new URL(api.url).protocol;
    const urls = Array.from({ length: endpoints }, (_, i) => `${scheme}//127.0.0.${i + 1}:${api.port}`);
    return this.#node(
      name,
      "start-gateway",
      (port) => ({
        ...production,
        LOG_LEVEL: logLevel,
        GATEWAY_PORT: String(port),
        API_URL: urls.join(","),
        UPSTREAM_PROTOCOL: this.#options.upstreamProtocol,
        ...(tls === undefined
          ? {}
          : {
              TLS_CERT_FILE: tls.certFile,
              TLS_KEY_FILE: tls.keyFile,
              API_CA_FILE: tls.caFile,
              GATEWAY_CLIENT_CERT_FILE: tls.certFile,
              GATEWAY_CLIENT_KEY_FILE: tls.keyFile,
            }),
        ...env,
      }),
      tls,
    );
  }

  /**
   * A CA and a certificate for 127.0.0.1 (and 127.0.0.2-3) it signed, made
   * with openssl as an operator would; this process trusts the CA from now on
   * (its health checks, and fetch).
   */
  async tls(): Promise<BenchTls> {
    const dir = join(this.#dir, "tls");
    await mkdir(dir, { recursive: true });
    const [caFile, caKey, certFile, keyFile, csr, ext] = ["ca.crt", "ca.key", "cert.pem", "key.pem", "csr", "ext"].map(
      (f) => join(dir, f),
    ) as [string, string, string, string, string, string];
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await run("openssl", [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      caKey,
      "-out",
      caFile,
      "-days",
      "1",
      "-subj",
      "/CN=bench CA",
    ]);
    await run("openssl", ["req", ...ec, "-keyout", keyFile, "-out", csr, "-subj", "/CN=bench"]);
    await writeFile(
      ext,
      "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    await run("openssl", [
      ..."x509 -req -days 1 -set_serial 0x1001".split(" "),
      ...["-in", csr, "-CA", caFile, "-CAkey", caKey, "-extfile", ext, "-out", certFile],
    ]);
    tlsModule.setDefaultCACertificates([...tlsModule.getCACertificates("default"), await readFile(caFile, "utf8")]);
    return { caFile, certFile, keyFile };
  }

  /** HAProxy in front of `gateways`, configured as `npm run cluster` configures it. */
  async haproxy(gateways: readonly Server[]): Promise<Server> {
    const port = await freePort();
    const dir = join(this.#dir, "haproxy");
    await mkdir(dir, { recursive: true });
    const file = join(dir, "haproxy.cfg");
    const servers = gateways.map((g) => ({ name: g.name.replaceAll(/\W+/g, "-"), port: g.port }));
    await writeFile(file, haproxyConfig({ host: "127.0.0.1", port, gateways: servers }));
    const child = spawn("haproxy", ["-db", "-f", file], { stdio: ["ignore", "ignore", "inherit"] });
    this.#children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitHealthy(url);
    return { name: "haproxy", port, url, pid: child.pid as number };
  }

  /**
   * nginx in front of `api`: proxy_pass for HTTP/1.1 Connect, grpc_pass for gRPC
   * (h2c), adding the assertion and request id a gateway would (`assertion`,
   * for Get, made to last the whole run).
   */
  async nginx(api: Server, assertion: { readonly requestId: string; readonly token: string }): Promise<Nginx> {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const dir = join(this.#dir, "nginx");
    await mkdir(join(dir, "logs"), { recursive: true });
    await writeFile(
      join(dir, "nginx.conf"),
      `worker_processes 1; error_log stderr error; pid ${join(dir, "nginx.pid")};
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a connection after 1000 requests by default, and h2load does not reconnect.
  keepalive_requests 100000000;
  upstream api_h1 { server 127.0.0.1:${api.port}; keepalive 64; }
  upstream api_h2 { server 127.0.0.1:${api.port}; keepalive 64; }
  server { listen 127.0.0.1:${httpPort}; location / { proxy_pass http://api_h1; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header x-request-id ${assertion.requestId}; proxy_set_header x-bazbii-assertion ${assertion.token}; } }
  server { listen 127.0.0.1:${grpcPort} http2; location / { grpc_pass grpc://api_h2;
    grpc_set_header x-request-id ${assertion.requestId}; grpc_set_header x-bazbii-assertion ${assertion.token}; } }
}`,
    );
    this.#children.push(
      spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "inherit" }),
    );
    // nginx listens within milliseconds of starting; it is not polled like our servers.
    await sleep(500);
    return { connectUrl: `http://127.0.0.1:${httpPort}`, grpcUrl: `http://127.0.0.1:${grpcPort}` };
  }

  stopAll(): void {
    for (const child of this.#children) child.kill("SIGTERM");
  }

  /** Runs a server as its npm script does, with two malloc arenas like it, and waits until it is healthy. */
  async #node(
    name: string,
    script: keyof typeof nodeFlags,
    env: (port: number) => Record<string, string>,
    tls?: BenchTls,
  ): Promise<Server> {
    const port = await freePort();
    const child = spawn(process.execPath, [...nodeFlags[script], `dist/cmd/${script}.js`], {
      env: { PATH: process.env.PATH ?? "", MALLOC_ARENA_MAX: "2", ...env(port) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    this.#children.push(child);
    const url = `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`;
    await waitHealthy(url, tls);
    return { name, port, url, pid: child.pid as number };
  }
}

/** Ports already given out: the kernel may hand a closed port out again before its server listens on it. */
const givenOut = new Set<number>();

async function freePort(): Promise<number> {
  for (;;) {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const { port } = s.address() as { port: number };
    await new Promise<void>((r) => s.close(() => r()));
    if (!givenOut.has(port)) {
      givenOut.add(port);
      return port;
    }
  }
}

/** Polls /healthz; over TLS with the bench's certificate, which mutual TLS asks for. */
async function waitHealthy(url: string, tls?: BenchTls): Promise<void> {
  const options =
    tls === undefined
      ? undefined
      : { ca: await readFile(tls.caFile), cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) };
  for (let i = 0; i < 200; i++) {
    if ((await healthzStatus(url, options)) === 200) return;
    await sleep(100);
  }
  throw new Error(`${url} did not become healthy`);
}

function healthzStatus(url: string, tls: https.RequestOptions | undefined): Promise<number> {
  return new Promise((resolve) => {
    const req = (tls === undefined ? http : https).get(`${url}/healthz`, tls ?? {}, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
  });
}

/** A process's resident memory now and its peak so far (VmHWM), in MB. */
export async function rssMb(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { now: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

const clockTicksPerSecond = Number((await run("getconf", ["CLK_TCK"])).stdout.trim()) || 100;

/** /proc/<pid>/stat's fields after the command name (which is in parentheses and may hold spaces). */
async function statFields(pid: number | "self"): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU seconds a process has used so far, all its threads (utime + stime). */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = await statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/**
 * CPU seconds of the load generators so far: autocannon runs in this process,
 * h2load as a child whose time is added (cutime + cstime) once it has exited.
 * They share the two cores with the servers, so what they spend per request
 * is part of every requests/s figure.
 */
export async function loadGeneratorCpuSeconds(): Promise<number> {
  const fields = await statFields("self");
  return fields.slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) / clockTicksPerSecond;
}
