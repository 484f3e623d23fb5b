import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { apiEnv } from "../src/config/api-config.js";
import { commonEnv } from "../src/config/env.js";
import { gatewayEnv } from "../src/config/gateway-config.js";
import { httpLimitsEnv } from "../src/config/http-limits.js";

// deploy/kubernetes/ against the code it deploys: the configuration table,
// the ports, the probe paths, the npm scripts' Node flags. What a reviewer
// could let drift, a test does not.

const DIR = "deploy/kubernetes";

interface Container {
  name: string;
  command: string[];
  ports: { name: string; containerPort: number }[];
  env: { name: string; value?: string }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
}
interface Resource {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

async function resources(): Promise<Resource[]> {
  const out: Resource[] = [];
  for (const file of await readdir(DIR)) {
    if (!file.endsWith(".yaml") || file === "kustomization.yaml") continue;
    for (const doc of parseAllDocuments(await readFile(join(DIR, file), "utf8"))) out.push(doc.toJS() as Resource);
  }
  return out;
}

function deployment(all: Resource[], name: string): { container: Container; grace: number } {
  const d = all.find((r) => r.kind === "Deployment" && r.metadata.name === name);
  if (d === undefined) throw new Error(`no Deployment ${name}`);
  const pod = (d.spec.template as { spec: { containers: Container[]; terminationGracePeriodSeconds: number } }).spec;
  return { container: pod.containers[0] as Container, grace: pod.terminationGracePeriodSeconds };
}

const envOf = (c: Container, name: string) => c.env.find((e) => e.name === name)?.value;

describe("deploy/kubernetes", () => {
  it("lists every manifest in its kustomization", async () => {
    const kustomization = (await readFile(join(DIR, "kustomization.yaml"), "utf8")).toString();
    const files = (await readdir(DIR)).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    for (const file of files) expect(kustomization).toContain(`- ${file}`);
  });

  it.each([
    ["bazbii-api", "start-api", { ...commonEnv, ...httpLimitsEnv, ...apiEnv }, "API_PORT", "api_node_flags"],
    [
      "bazbii-gateway",
      "start-gateway",
      { ...commonEnv, ...httpLimitsEnv, ...gatewayEnv },
      "GATEWAY_PORT",
      "gateway_node_flags",
    ],
  ] as const)(
    "%s: runs %s with the npm script's flags, only variables the configuration table has, its port, and both probes",
    async (name, script, table, portVar, flags) => {
      const all = await resources();
      const { container, grace } = deployment(all, name);
      const pkg = JSON.parse(await readFile("package.json", "utf8")) as { config: Record<string, string> };
      expect(container.command).toEqual(["node", ...(pkg.config[flags] as string).split(" "), `dist/cmd/${script}.js`]);
      // Every variable is one the process reads (MALLOC_ARENA_MAX is glibc's, as the npm scripts set it).
      for (const { name: variable } of container.env) {
        if (variable !== "MALLOC_ARENA_MAX") expect(Object.keys(table), `${name}: ${variable}`).toContain(variable);
      }
      const port = Number(envOf(container, portVar));
      expect(port).toBe((table as unknown as Record<string, { default: number }>)[portVar]?.default);
      // The admin port carries /metrics, which the public one then no longer serves.
      const adminPort = Number(envOf(container, portVar === "GATEWAY_PORT" ? "ADMIN_PORT" : "API_ADMIN_PORT"));
      expect(container.ports.map((p) => p.containerPort)).toEqual([port, adminPort]);
      const portName = container.ports[0]?.name;
      expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: portName });
      expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: portName });
      // Time enough for preStop, draining and calls in flight before SIGKILL.
      const stopping =
        (container.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000 +
        Number(envOf(container, "SHUTDOWN_DRAIN_MS")) +
        Number(envOf(container, "SHUTDOWN_GRACE_MS"));
      expect(stopping).toBeGreaterThan(0);
      expect(grace * 1000).toBeGreaterThan(stopping);
      // PodDisruptionBudget and HorizontalPodAutoscaler for it.
      expect(all.some((r) => r.kind === "PodDisruptionBudget" && r.metadata.name === name)).toBe(true);
      const hpa = all.find((r) => r.kind === "HorizontalPodAutoscaler" && r.metadata.name === name);
      expect(hpa?.spec.scaleTargetRef).toMatchObject({ kind: "Deployment", name });
    },
  );

  it("gives the gateway every API server pod: API_URL names a headless Service on the API servers' port", async () => {
    const all = await resources();
    const apiUrl = new URL(envOf(deployment(all, "bazbii-gateway").container, "API_URL") ?? "");
    const service = all.find((r) => r.kind === "Service" && r.metadata.name === apiUrl.hostname);
    expect(service?.spec.clusterIP).toBe("None");
    const apiPort = Number(envOf(deployment(all, "bazbii-api").container, "API_PORT"));
    expect((service?.spec.ports as { port: number }[] | undefined)?.[0]?.port).toBe(apiPort);
    expect(Number(apiUrl.port)).toBe(apiPort);
  });
});
