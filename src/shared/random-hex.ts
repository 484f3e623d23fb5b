import { randomFillSync } from "node:crypto";

/**
 * Random bytes taken from a pool filled 4 KiB at a time, as hex: trace and span
 * ids are made for every request, and one getrandom call per id (randomBytes)
 * was 5-7% of a process's CPU under load. Node's crypto.randomUUID pools the
 * same way.
 */
const pool = Buffer.alloc(4096);
let offset = pool.length;

export function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return hex;
}
