import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CHECK_INTERVAL_MS, startLoadBalancer } from "./haproxy.js";
import { ServerProcess } from "./server-process.js";

export interface ClusterOptions {
  /** Interface everything listens on. */
  readonly host: string;
  /** The load balancer's port: where clients call. */
  readonly port: number;
  readonly gatewayPorts: readonly number[];
  readonly apiPorts: readonly number[];
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly natsUrl: string;
  /** Logs and the load balancer's configuration. */
  readonly dir: string;
  /** Node flags of the two npm scripts (package.json's config). */
  readonly nodeFlags: { readonly api: readonly string[]; readonly gateway: readonly string[] };
  /** More environment for every server (SHUTDOWN_DRAIN_MS, rate limits, ...). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A server's place in the cluster, for the table `npm run cluster` prints. */
export interface Member {
  readonly name: string;
  readonly role: "load balancer" | "gateway" | "API server";
  readonly url: string;
  readonly pid: number | undefined;
  readonly log: string;
}

export interface Cluster {
  readonly url: string;
  members(): Member[];
  /** A rolling restart's step: SIGTERM (it drains), wait for the exit, start it again, wait until it serves. */
  restart(role: "gateway" | "api", index: number): Promise<void>;
  /** Stops it all: the load balancer, then the gateways, then the API servers, each gracefully. */
  stop(): Promise<void>;
}

/**
 * A whole deployment on one machine, with real parts: HAProxy in front of
 * gateways, each relaying to every API server, the API servers sharing one
 * PostgreSQL (its schema migrated by whichever starts first), the gateways
 * sharing rate limits in Redis, the API servers publishing domain events to
 * NATS.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  await mkdir(options.dir, { recursive: true });
  const apiUrls = options.apiPorts.map((port) => `http://127.0.0.1:${port}`).join(",");
  const common = { HOST: options.host, ...options.env };
  const api = (i: number) =>
    new ServerProcess({
      script: "start-api",
      name: `api-${i + 1}`,
      env: {
        ...common,
        API_PORT: String(options.apiPorts[i]),
        DATABASE_URL: options.databaseUrl,
        NATS_URL: options.natsUrl,
      },
      nodeFlags: options.nodeFlags.api,
      logFile: join(options.dir, `api-${i + 1}.log`),
    });
  const gateway = (i: number) =>
    new ServerProcess({
      script: "start-gateway",
      name: `gateway-${i + 1}`,
      env: {
        ...common,
        GATEWAY_PORT: String(options.gatewayPorts[i]),
        API_URL: apiUrls,
        REDIS_URL: options.redisUrl,
      },
      nodeFlags: options.nodeFlags.gateway,
      logFile: join(options.dir, `gateway-${i + 1}.log`),
    });
  const apis: ServerProcess[] = [];
  const gateways: ServerProcess[] = [];
  let lb: { stop(): Promise<void> };
  try {
    apis.push(...options.apiPorts.map((_, i) => api(i)));
    await Promise.all(apis.map((p) => p.ready()));
    gateways.push(...options.gatewayPorts.map((_, i) => gateway(i)));
    await Promise.all(gateways.map((p) => p.ready()));
    lb = await startLoadBalancer({
      host: options.host,
      port: options.port,
      gateways: options.gatewayPorts.map((port, i) => ({ name: `gateway-${i + 1}`, port })),
      dir: options.dir,
    });
  } catch (err) {
    // Nothing is left running when the cluster cannot start.
    await Promise.all([...gateways, ...apis].map((p) => p.stop("SIGKILL")));
    throw err;
  }
  const url = `http://${options.host}:${options.port}`;
  return {
    url,
    members: () => [
      { name: "haproxy", role: "load balancer", url, pid: undefined, log: join(options.dir, "haproxy.cfg") },
      ...gateways.map((p, i) => ({
        name: p.options.name,
        role: "gateway" as const,
        url: `http://${options.host}:${options.gatewayPorts[i]}`,
        pid: p.pid,
        log: p.options.logFile,
      })),
      ...apis.map((p, i) => ({
        name: p.options.name,
        role: "API server" as const,
        url: `http://${options.host}:${options.apiPorts[i]}`,
        pid: p.pid,
        log: p.options.logFile,
      })),
    ],
    async restart(role, index) {
      const list = role === "api" ? apis : gateways;
      await list[index]?.stop("SIGTERM");
      const next = role === "api" ? api(index) : gateway(index);
      list[index] = next;
      await next.ready();
      // Ready for those in front of it too: its /readyz answers 200, and the
      // load balancer or the gateways have had the time to see it.
      const port = (role === "api" ? options.apiPorts : options.gatewayPorts)[index];
      await untilReady(`http://127.0.0.1:${port}/readyz`);
      await sleep(2 * CHECK_INTERVAL_MS);
    },
    async stop() {
      await lb.stop();
      await Promise.all(gateways.map((p) => p.stop("SIGTERM")));
      await Promise.all(apis.map((p) => p.stop("SIGTERM")));
    },
  };
}

async function untilReady(url: string): Promise<void> {
  for (;;) {
    const status = await fetch(url).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await sleep(50);
  }
}
