import { bool, type CleanedEnv, cleanEnv, str } from "envalid";
import { telemetryEnv } from "./telemetry-env.js";

/** A configuration value that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Development default for INTERNAL_AUTH_SECRET, so that `npm start` works on a
 * fresh checkout; refused when NODE_ENV=production.
 */
export const DEVELOPMENT_INTERNAL_AUTH_SECRET = "bazbii-internal-development-secret-not-for-production";

/** Variables every process reads. */
export const commonEnv = {
  NODE_ENV: str({
    choices: ["development", "production", "test"],
    default: "development",
    desc: "production refuses development defaults such as the JWT secret",
  }),
  HOST: str({ default: "127.0.0.1", desc: "interface the servers listen on" }),
  ADMIN_HOST: str({
    default: "127.0.0.1",
    desc: "interface of the admin ports (ADMIN_PORT, API_ADMIN_PORT): loopback unless the scraper is elsewhere",
  }),
  LOG_LEVEL: str({
    choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    default: "info",
    desc: "pino log level",
  }),
  INTERNAL_AUTH_SECRET: str({
    default: DEVELOPMENT_INTERNAL_AUTH_SECRET,
    desc: "HMAC secret of the assertion the gateway signs on every call (actor, method, request id; good for a minute) and the API server requires; the same on every gateway and API server; the development default is refused when NODE_ENV=production",
  }),
  FAULT_INJECTION: bool({
    default: false,
    desc: "honour x-bazbii-fault-* request headers (abort with a code, delay); refused when NODE_ENV=production",
  }),
  ...telemetryEnv,
};

/** Development and test conveniences that must never be on in production. */
export function refuseInProduction(env: {
  NODE_ENV: string;
  FAULT_INJECTION: boolean;
  INTERNAL_AUTH_SECRET: string;
}): void {
  if (env.NODE_ENV !== "production") return;
  if (env.FAULT_INJECTION) {
    throw new ConfigError("invalid configuration:\n  FAULT_INJECTION: must not be enabled when NODE_ENV=production");
  }
  if (env.INTERNAL_AUTH_SECRET === DEVELOPMENT_INTERNAL_AUTH_SECRET) {
    throw new ConfigError(
      "invalid configuration:\n  INTERNAL_AUTH_SECRET: the development default must not be used in production; set a secret of at least 32 bytes, the same on every gateway and API server",
    );
  }
  if (Buffer.byteLength(env.INTERNAL_AUTH_SECRET) < 32) {
    throw new ConfigError("invalid configuration:\n  INTERNAL_AUTH_SECRET: must be at least 32 bytes (256 bits)");
  }
}

/**
 * Reads and validates variables once, at start-up. Every bad or missing value
 * is reported together, each named, as one ConfigError.
 */
export function readEnv<S extends Record<string, unknown>>(env: NodeJS.ProcessEnv, specs: S): CleanedEnv<S> {
  return cleanEnv(env, specs as never, {
    reporter({ errors }) {
      const problems = Object.entries(errors).map(([name, err]) => `${name}: ${(err as Error).message}`);
      if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
    },
  }) as CleanedEnv<S>;
}

/** A certificate and its key, named by two variables that go together (or neither). */
export function tlsFilesFrom(
  certName: string,
  certFile: string | undefined,
  keyName: string,
  keyFile: string | undefined,
): { certFile: string; keyFile: string } | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new ConfigError(`invalid configuration:\n  ${certName}, ${keyName}: set both or neither`);
  }
  return { certFile, keyFile };
}

/** Where a process serves its operators (/metrics, /healthz, /readyz), when it has an admin port. */
export interface AdminAddress {
  readonly host: string;
  readonly port: number;
}

export function adminAddressFrom(host: string, port: number | undefined): AdminAddress | undefined {
  return port === undefined ? undefined : { host, port };
}
