import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, rmdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MemoryFS, PGlite } from "@electric-sql/pglite";
import type { SqlClient } from "./sql-client.js";

/**
 * Embedded PostgreSQL (WASM) persisted in `dataDir`: a fresh checkout runs with
 * no database server and keeps its posts across restarts.
 *
 * Opened with PGlite's defaults, the API server peaks at 1.1–1.2 GB RSS while
 * it creates its database and sits at 500–750 MB after. Where that goes, and
 * what each setting below takes back (RSS of the API server alone):
 *
 * - V8's optimising compiler (TurboFan) compiling PGlite's WASM as it gets
 *   hot: ~600 MB for a few seconds for one 105-KB function alone (it gets hot
 *   during initdb, so at every first start), tens of MB for a few others,
 *   part of it kept by malloc afterwards. Liftoff-only compilation takes all
 *   of it back.
 * - The WASM heap: PostgreSQL allocates its shared memory there and Emscripten
 *   zero-fills it, so all of shared_buffers (128 MB from initdb) is resident
 *   from the start; WASM memory only grows, never shrinks.
 * - initdb on a fresh data directory runs in a second PGlite instance, which
 *   copies its whole heap (128 MB at least: the module declares that minimum)
 *   and, for an on-disk data directory, round-trips the result through a tar
 *   in JS memory (several copies of the ~40 MB cluster).
 */
export async function openPglite(dataDir: string, settings: PgliteSettings = "small"): Promise<SqlClient> {
  await mkdir(dataDir, { recursive: true });
  const db = settings === "pglite" ? await PGlite.create(dataDir) : await openSmall(dataDir);
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      const result = await db.query<Row>(sql, params as unknown[]);
      return { rows: result.rows };
    },
    async exec(sql) {
      await db.exec(sql);
    },
    async close() {
      await db.close();
    },
  };
}

/**
 * PGLITE_SETTINGS: `small`, the settings below (the default), or `pglite`,
 * PGlite's own (V8's optimising compiler for its WASM, 128 MB of shared
 * buffers): 5–15% more calls/s than `small` (bench/README.md), for a peak of
 * 1.1–1.2 GB at the first start and 500–750 MB after. The SQL is the
 * same either way.
 */
export type PgliteSettings = "small" | "pglite";

async function openSmall(dataDir: string): Promise<PGlite> {
  engine ??= loadEngine();
  if (!existsSync(join(dataDir, "PG_VERSION"))) await initialise(dataDir, await engine);
  return PGlite.create({ ...(await engine), fs: new PgdataOnDisk(dataDir), startParams: START_PARAMS });
}

/**
 * PostgreSQL settings. They go on the command line at every start, which wins
 * over postgresql.conf, so data directories created before they existed get
 * them too; and to initdb, which writes them to postgresql.conf and runs with
 * them. None changes what SQL means: the dialect stays PostgreSQL's.
 */
const SETTINGS = [
  // Shared memory is resident in full (see above): 8 MB (1,024 pages) instead
  // of 128 MB. A page not in them is read from the OS's page cache.
  "shared_buffers=8MB",
  // One backend ever runs (single-user mode); every slot costs shared memory
  // for its PGPROC and lock table share. 5 is the least PostgreSQL accepts
  // (superuser_reserved_connections is 3).
  "max_connections=5",
  // CREATE INDEX and VACUUM may use all of it, and the WASM heap keeps what it
  // once grew to: 16 MB instead of 64 MB bounds that.
  "maintenance_work_mem=16MB",
].flatMap((setting) => ["-c", setting]);

const START_PARAMS = [...PGlite.defaultStartParams, ...SETTINGS];

/**
 * initdb's arguments. 1 MB WAL segments instead of 16 MB: the cluster initdb
 * writes shrinks from ~40 MB to ~25 MB, which is what PGlite copies around
 * in memory should it ever stop writing initdb's output straight to disk
 * (see PgdataOnDisk).
 */
const INITDB_ARGS = ["--wal-segsize=1", ...SETTINGS];

/** Where PGlite's Emscripten file system keeps PGDATA. */
const PGDATA = "/pglite/data";

/** The options that set up PGlite's engine, the same for every instance. */
interface Engine {
  readonly pgliteWasmModule: WebAssembly.Module;
  readonly initialMemory?: number;
}

/** PGlite's engine, set up once per process (tests open many databases). */
let engine: Promise<Engine> | undefined;

/**
 * PGlite's WASM module, compiled once for this process:
 *
 * - With Liftoff only (V8's baseline compiler), never TurboFan, which needs
 *   ~600 MB to compile one function of the module whenever that gets hot. The
 *   price is CPU: statements take 10–40% longer (a heatmap over thousands of
 *   posts the most): the API server's calls/s are 0.94–0.95 of TurboFan's
 *   on the bench's Get, about 0.87 on a mix of writes and heatmaps. The
 *   flags are process-wide; no other WASM runs in the API server.
 * - With a 16 MB initial heap instead of the 128 MB the module declares: the
 *   heap grows as PostgreSQL needs it, and initdb's instance, which copies its
 *   whole heap and rewrites it before every backend it runs, copies 16 MB.
 *   PGlite's `initialMemory` can only raise the module's minimum, so the
 *   minimum is lowered in the module's import of its memory (static data and
 *   stack end below 11 MB). An unexpected module keeps its own minimum.
 */
async function loadEngine(): Promise<Engine> {
  setFlagsFromString("--liftoff-only --no-wasm-tier-up --no-wasm-dynamic-tiering");
  const bytes = await readFile(createRequire(import.meta.url).resolve("@electric-sql/pglite/pglite.wasm"));
  const pages = 256;
  if (lowerMemoryMinimum(bytes, pages)) {
    return { pgliteWasmModule: await WebAssembly.compile(bytes), initialMemory: pages * 65_536 };
  }
  return { pgliteWasmModule: await WebAssembly.compile(bytes) };
}

/**
 * Rewrites, in place, the minimum size of the memory `env.memory` the module
 * imports from 2,048 pages to `pages` (both two-byte LEB128, so nothing
 * moves). Returns false, leaving `bytes` as they were, when the module is not
 * laid out as expected.
 */
function lowerMemoryMinimum(bytes: Uint8Array, pages: number): boolean {
  if (pages < 128 || pages >= 2048) return false;
  let at = 8; // past the magic number and version
  const leb = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[at++] ?? 0;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0 || shift > 28) return value;
    }
  };
  const name = (): string => {
    const length = leb();
    at += length;
    return Buffer.from(bytes.subarray(at - length, at)).toString();
  };
  while (at < bytes.length) {
    const section = bytes[at++];
    const size = leb();
    const end = at + size;
    if (section === 2) {
      for (let count = leb(); count > 0; count--) {
        const module = name();
        const field = name();
        const kind = bytes[at++];
        if (kind === 2) {
          // memory: limits (flags, minimum, maximum when flags & 1)
          const flags = bytes[at++] ?? 0;
          const minimumAt = at;
          const minimum = leb();
          if (module === "env" && field === "memory") {
            if (minimum !== 2048 || at - minimumAt !== 2) return false;
            bytes[minimumAt] = (pages & 0x7f) | 0x80;
            bytes[minimumAt + 1] = pages >> 7;
            return true;
          }
          if (flags & 1) leb();
        } else if (kind === 0) {
          leb(); // function: type index
        } else if (kind === 1) {
          at++; // table: element type, then limits as for a memory
          if ((bytes[at++] ?? 0) & 1) leb();
          leb();
        } else if (kind === 3) {
          at += 2; // global: value type, mutability
        } else {
          return false;
        }
      }
      return false;
    }
    at = end;
  }
  return false;
}

/**
 * PGDATA on disk (Emscripten's NODEFS at `root`), in a file system PGlite
 * takes for its in-memory one. For an in-memory PGDATA PGlite lets initdb's
 * instance write straight into it; for an on-disk one it has initdb write to
 * memory, then tars the cluster and untars it to disk, which holds several
 * copies of it in memory at once. Should PGlite stop recognising this as its
 * in-memory file system, it copies, as it does for any other: slower and
 * larger, never wrong.
 */
class PgdataOnDisk extends MemoryFS {
  readonly #root: string;

  constructor(root: string) {
    super();
    this.#root = root;
  }

  override init(pg: PGlite, options: Parameters<MemoryFS["init"]>[1]): ReturnType<MemoryFS["init"]> {
    const root = this.#root;
    return super.init(pg, {
      ...options,
      preRun: [
        ...(options.preRun ?? []),
        (mod) => {
          mod.FS.mkdirTree(PGDATA);
          mod.FS.mount(mod.NODEFS, { root }, PGDATA);
        },
      ],
    });
  }
}

/**
 * Creates the cluster in a sibling directory and renames it into place, so a
 * start interrupted during initdb leaves no half-made cluster behind (PGlite
 * would take any directory holding PG_VERSION for a finished one). Then
 * collects the garbage of initdb's instances (60 MB of WASM heaps and file
 * system) at once rather than at V8's next full collection, which an idle
 * server may not reach for a long time.
 */
async function initialise(dataDir: string, engine: Engine): Promise<void> {
  await removeAbandonedScratch(dataDir);
  const scratch = `${dataDir}.initdb-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch);
  try {
    const db = await PGlite.create({
      ...engine,
      fs: new PgdataOnDisk(scratch),
      startParams: START_PARAMS,
      initDbStartParams: INITDB_ARGS,
    });
    await db.close();
    await rmdir(dataDir); // empty: it has no PG_VERSION; fails rather than overwrite anything else
    await rename(scratch, dataDir);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  collectGarbage();
}

/** Removes what an initialise() killed mid-way left: scratch directories of processes gone. */
async function removeAbandonedScratch(dataDir: string): Promise<void> {
  const prefix = `${basename(dataDir)}.initdb-`;
  for (const entry of await readdir(dirname(dataDir))) {
    const pid = Number(entry.slice(prefix.length));
    if (!entry.startsWith(prefix) || !Number.isInteger(pid) || pid <= 0 || isRunning(pid)) continue;
    await rm(join(dirname(dataDir), entry), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A full garbage collection, through V8's `gc` made visible for a moment. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  setFlagsFromString("--no-expose-gc");
  gc();
}
