import { execFile } from "node:child_process";
import { chown, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./process.js";

const run = promisify(execFile);

/**
 * A PostgreSQL server of the test's own (initdb in a temp dir, its own port),
 * for tests that stop and start the database: the machine's shared server is
 * never touched. It runs as the `postgres` user when the test runs as root,
 * since PostgreSQL refuses to run as root.
 */
export class PrivatePostgres {
  private constructor(
    private readonly bin: string,
    private readonly dir: string,
    readonly port: number,
    private readonly asUser: readonly string[],
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const versions = (await readdir("/usr/lib/postgresql")).sort((a, b) => Number(b) - Number(a));
    const bin = `/usr/lib/postgresql/${versions[0]}/bin`;
    const dir = await mkdtemp(join(tmpdir(), "bazbii-pg-"));
    const root = process.getuid?.() === 0;
    if (root) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: gid } = await run("id", ["-g", "postgres"]);
      await chown(dir, Number(stdout), Number(gid));
    }
    const asUser = root ? ["runuser", "-u", "postgres", "--"] : [];
    const pg = new PrivatePostgres(bin, dir, await freePort(), asUser);
    await pg.exec("initdb", ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
    await pg.startServer();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts the server and waits until it accepts connections. */
  async startServer(): Promise<void> {
    await this.exec("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "-l",
      join(this.dir, "log"),
      "-w",
      "start",
    ]);
  }

  /** Stops it the way an outage does: connections are cut at once. */
  async stopServer(): Promise<void> {
    await this.exec("pg_ctl", ["-D", join(this.dir, "data"), "-m", "immediate", "-w", "stop"]);
  }

  async close(): Promise<void> {
    await this.stopServer().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  private async exec(tool: string, args: readonly string[]): Promise<void> {
    const [command = "", ...rest] = [...this.asUser, join(this.bin, tool), ...args];
    await run(command, rest, { timeout: 60_000 });
  }
}
