import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import type { SecureContextOptions } from "node:tls";

/** A server's TLS identity, as PEM files. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA whose certificates clients must present (mutual TLS); none asked when absent. */
  readonly clientCaFile?: string | undefined;
}

/** Reads the files; throws when one cannot be read. */
export async function readTlsFiles(files: TlsFiles): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readFile(files.certFile),
    readFile(files.keyFile),
    files.clientCaFile === undefined ? undefined : readFile(files.clientCaFile),
  ]);
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

/** How often the files are looked at for a renewed certificate. */
const WATCH_INTERVAL_MS = 1_000;

/**
 * Calls `changed` when one of the files changes (a renewed certificate): polled
 * with stat, which also sees Kubernetes' secret updates (a symlink swapped
 * under the path) that inotify-based watching misses. Returns the way to stop.
 */
export function watchTlsFiles(files: TlsFiles, changed: () => void): () => void {
  const paths = [files.certFile, files.keyFile, files.clientCaFile].filter((p): p is string => p !== undefined);
  const onChange = (now: { mtimeMs: number }, before: { mtimeMs: number }): void => {
    if (now.mtimeMs !== before.mtimeMs) changed();
  };
  for (const path of paths) watchFile(path, { interval: WATCH_INTERVAL_MS, persistent: false }, onChange);
  return () => {
    for (const path of paths) unwatchFile(path, onChange);
  };
}
