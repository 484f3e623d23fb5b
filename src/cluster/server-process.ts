import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { createInterface } from "node:readline";

export interface ServerProcessOptions {
  /** Which entry point: dist/cmd/<script>.js. */
  readonly script: "start-api" | "start-gateway";
  /** What the cluster calls it: api-1, gateway-2, ... */
  readonly name: string;
  readonly env: Readonly<Record<string, string>>;
  /** Node flags of its npm script (package.json's config), as `npm run start:*` gives them. */
  readonly nodeFlags: readonly string[];
  /** Its log (JSON lines on stdout, plain text on stderr) goes to this file. */
  readonly logFile: string;
}

/**
 * One server of the cluster, as its own Node.js process, run the way `npm run
 * start:api` / `start:gateway` runs it; ready once it logs SYS_001.
 */
export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #log: WriteStream;
  readonly #ready: Promise<void>;
  readonly #exited: Promise<number | null>;

  constructor(readonly options: ServerProcessOptions) {
    this.#log = createWriteStream(options.logFile, { flags: "a" });
    this.#child = spawn(process.execPath, [...options.nodeFlags, `dist/cmd/${options.script}.js`], {
      env: { ...process.env, MALLOC_ARENA_MAX: "2", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#exited = once(this.#child, "exit").then(([code]) => code as number | null);
    this.#child.stderr?.pipe(this.#log, { end: false });
    const lines = createInterface({ input: this.#child.stdout as NodeJS.ReadableStream });
    this.#ready = new Promise((resolve, reject) => {
      lines.on("line", (line) => {
        this.#log.write(`${line}\n`);
        if (line.includes('"log_id":"SYS_001"')) resolve();
      });
      void this.#exited.then((code) =>
        reject(new Error(`${options.name} exited with ${code} before it started; see ${options.logFile}`)),
      );
    });
    this.#ready.catch(() => {});
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Sends the signal and waits for the process to exit (SIGTERM: it drains and stops gracefully). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
    const code = await this.#exited;
    this.#log.end();
    return code;
  }
}
