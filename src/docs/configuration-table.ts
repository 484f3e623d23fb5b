import { apiEnv } from "../config/api-config.js";
import { commonEnv } from "../config/env.js";
import { gatewayEnv } from "../config/gateway-config.js";
import { httpLimitsEnv } from "../config/http-limits.js";

interface EnvSpec {
  readonly default?: unknown;
  readonly desc?: string;
  readonly choices?: readonly unknown[];
}

const groups: readonly [string, Record<string, EnvSpec>][] = [
  ["both", commonEnv],
  ["both", httpLimitsEnv],
  ["gateway", gatewayEnv],
  ["API server", apiEnv],
];

function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/** The configuration table of the README, from the validated variable specs themselves. */
export function renderConfigurationTable(): string {
  const rows = groups.flatMap(([who, specs]) =>
    Object.entries(specs).map(([name, spec]) => {
      const def =
        spec.default === undefined ? "(unset)" : spec.default === "" ? "(empty)" : `\`${String(spec.default)}\``;
      const choices = spec.choices ? ` One of: ${spec.choices.map((c) => `\`${String(c)}\``).join(", ")}.` : "";
      return `| \`${name}\` | ${who} | ${def} | ${cell(`${spec.desc ?? ""}.${choices}`)} |`;
    }),
  );
  return ["| variable | read by | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}
