import { resolve } from "node:path";
import { port, str, url } from "envalid";
import { type Cluster, startCluster } from "../cluster/cluster.js";
import { ConfigError, readEnv } from "../config/env.js";

// npm run cluster: HAProxy on GATEWAY_PORT in front of two gateways, each
// relaying to three API servers on the running PostgreSQL, with Redis for the
// shared rate limits and NATS for domain events. Ctrl-C or SIGTERM stops it all.

const flags = (name: string): string[] => (process.env[name] ?? "").split(" ").filter((f) => f !== "");

let env: ReturnType<typeof readClusterEnv>;
function readClusterEnv() {
  return readEnv(process.env, {
    HOST: str({ default: "127.0.0.1" }),
    GATEWAY_PORT: port({ default: 8080 }),
    API_PORT: port({ default: 8081 }),
    DATABASE_URL: url({ default: "postgres://postgres@127.0.0.1:5432/test" }),
    REDIS_URL: url({ default: "redis://127.0.0.1:6379" }),
    NATS_URL: url({ default: "nats://127.0.0.1:4222" }),
    CLUSTER_DIR: str({ default: "./data/cluster" }),
  });
}
try {
  env = readClusterEnv();
} catch (err) {
  process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(1);
}

let cluster: Cluster | undefined;
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  process.stdout.write("stopping the cluster...\n");
  await cluster?.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());

try {
  cluster = await startCluster({
    host: env.HOST,
    port: env.GATEWAY_PORT,
    gatewayPorts: [env.GATEWAY_PORT + 10, env.GATEWAY_PORT + 11],
    apiPorts: [env.API_PORT, env.API_PORT + 1, env.API_PORT + 2],
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    natsUrl: env.NATS_URL,
    dir: resolve(env.CLUSTER_DIR),
    nodeFlags: {
      api: flags("npm_package_config_api_node_flags"),
      gateway: flags("npm_package_config_gateway_node_flags"),
    },
  });
} catch (err) {
  process.stderr.write(`the cluster did not start: ${err instanceof Error ? err.message : String(err)}\n`);
  await cluster?.stop();
  process.exit(1);
}
const rows = cluster.members().map((m) => [m.name, m.role, m.url, String(m.pid ?? "-"), m.log]);
const header = ["name", "role", "url", "pid", "log"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
const line = (cells: string[]) =>
  `${cells
    .map((c, i) => c.padEnd(widths[i] ?? 0))
    .join("  ")
    .trimEnd()}\n`;
process.stdout.write(`cluster ready: call ${cluster.url} (Ctrl-C stops it all)\n`);
process.stdout.write(line(header));
for (const row of rows) process.stdout.write(line(row));
