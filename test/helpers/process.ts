import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

/** A port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether a port is free now. */
async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port p for which p + each offset is free too (for commands that take a base port). */
export async function freePortWith(offsets: readonly number[]): Promise<number> {
  for (;;) {
    const base = await freePort();
    if (base + Math.max(...offsets) > 65_000) continue;
    if ((await Promise.all(offsets.map((o) => isFree(base + o)))).every(Boolean)) return base;
  }
}

export interface RunningProcess {
  readonly child: ChildProcess;
  /** Every JSON line written to stdout so far. */
  readonly lines: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the first stdout line that matches. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited(): Promise<number | null>;
}

/** Runs one of the built entry points (dist/cmd/*.js) with Node 24, the given environment, and Node flags if any. */
export function runEntryPoint(
  script: string,
  env: Record<string, string>,
  args: string[] = [],
  nodeFlags: string[] = [],
): RunningProcess {
  return watch(
    spawn(process.execPath, [...nodeFlags, `dist/cmd/${script}.js`, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

/** Runs an npm script as a user does (`npm start`), with the given environment added to this one. */
export function runNpmScript(script: string, env: Record<string, string>): RunningProcess {
  return watch(
    spawn("npm", ["run", "-s", script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }),
  );
}

function watch(child: ChildProcess): RunningProcess {
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] =
    [];
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  if (child.stdout === null) throw new Error("stdout is not piped");
  createInterface({ input: child.stdout }).on("line", (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { text };
    }
    lines.push(line);
    for (const w of waiters.splice(0)) w.match(line) ? w.resolve(line) : waiters.push(w);
  });
  const exit = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    lines,
    stderr: () => stderr,
    waitForLine(match, timeoutMs = 20_000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        void exit.then((code) => reject(new Error(`exited with ${code} before a matching line; stderr: ${stderr}`)));
      });
    },
    exited: () => exit,
  };
}

/** The Node flags an npm script runs a server with (package.json's config), as `npm run start:*` passes them. */
export async function npmScriptNodeFlags(server: "api" | "gateway"): Promise<string[]> {
  const pkg = JSON.parse(await readFile("package.json", "utf8")) as { config: Record<string, string> };
  return (pkg.config[`${server}_node_flags`] as string).split(" ");
}
