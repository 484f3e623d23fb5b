import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** How often HAProxy asks each gateway's /readyz. */
export const CHECK_INTERVAL_MS = 200;

export interface LoadBalancerOptions {
  readonly host: string;
  readonly port: number;
  readonly gateways: readonly { readonly name: string; readonly port: number }[];
  /** Where its configuration is written. */
  readonly dir: string;
}

/**
 * HAProxy (Debian's package) in front of the gateways, in TCP mode: each client
 * connection goes to the gateway with the fewest, among those whose /readyz
 * answers 200 (checked every CHECK_INTERVAL_MS). A draining gateway answers 503 and asks
 * its clients to reconnect (GOAWAY, Connection: close), so new connections go
 * to the others; a connection attempt to a gateway that is gone is sent to
 * another one. TCP mode keeps HTTP/1.1, h2c and gRPC on one port untouched;
 * the gateways are the L7 balancers, each for every API server.
 */
export function haproxyConfig(options: Omit<LoadBalancerOptions, "dir">): string {
  return [
    "global",
    "  maxconn 4096",
    "defaults",
    "  mode tcp",
    "  timeout connect 1s",
    "  timeout client 120s",
    "  timeout server 120s",
    "  retries 3",
    "  option redispatch",
    "frontend bazbii",
    `  bind ${options.host}:${options.port}`,
    "  default_backend gateways",
    "backend gateways",
    "  balance leastconn",
    "  option httpchk GET /readyz",
    "  http-check expect status 200",
    `  default-server inter ${CHECK_INTERVAL_MS}ms fall 1 rise 1`,
    ...options.gateways.map((g) => `  server ${g.name} 127.0.0.1:${g.port} check`),
    "",
  ].join("\n");
}

export async function startLoadBalancer(options: LoadBalancerOptions): Promise<{ stop(): Promise<void> }> {
  const file = join(options.dir, "haproxy.cfg");
  await writeFile(file, haproxyConfig(options));
  const child: ChildProcess = spawn("haproxy", ["-db", "-f", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, "exit");
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
    if (await canConnect(options.host, options.port)) break;
    if (i > 100) throw new Error(`haproxy did not listen on ${options.port}: ${stderr}`);
    await sleep(50);
  }
  return {
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}
