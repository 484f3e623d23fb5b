/** One group of error lines: same log ID, same reason. */
export interface ErrorGroup {
  readonly logId: string;
  readonly reason: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** The error message of the first line, for a human to recognise the group. */
  readonly sample: string;
  /** Lines per minute between the first and the last (over at least one minute). */
  perMinute: number;
}

interface Line {
  log_id?: unknown;
  reason?: unknown;
  level?: unknown;
  time?: unknown;
  msg?: unknown;
  err?: { message?: unknown };
}

/**
 * Aggregates JSON log lines (seeds 001/002's error aggregation): every line
 * with a log ID at warn or above, grouped by (log ID, reason), most frequent first.
 * Lines that are not JSON are skipped: a log file may hold other output.
 */
export function summarizeErrors(lines: Iterable<string>): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>();
  for (const text of lines) {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      continue;
    }
    if (
      typeof line.log_id !== "string" ||
      (line.level !== "warn" && line.level !== "error" && line.level !== "fatal")
    ) {
      continue;
    }
    const reason = typeof line.reason === "string" ? line.reason : "";
    const time = typeof line.time === "string" ? line.time : "";
    const key = `${line.log_id}\u0000${reason}`;
    const group = groups.get(key);
    if (group === undefined) {
      const sample = typeof line.err?.message === "string" ? line.err.message : String(line.msg ?? "");
      groups.set(key, { logId: line.log_id, reason, count: 1, firstSeen: time, lastSeen: time, sample, perMinute: 0 });
    } else {
      group.count++;
      if (time !== "" && (group.firstSeen === "" || time < group.firstSeen)) group.firstSeen = time;
      if (time > group.lastSeen) group.lastSeen = time;
    }
  }
  for (const g of groups.values()) {
    const minutes = Math.max(1, (Date.parse(g.lastSeen) - Date.parse(g.firstSeen)) / 60_000 || 1);
    g.perMinute = Math.round((g.count / minutes) * 100) / 100;
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.logId.localeCompare(b.logId));
}

/** A fixed-width table for a terminal. */
export function formatErrorSummary(groups: readonly ErrorGroup[]): string {
  const header = ["count", "per min", "log_id", "reason", "first seen", "last seen", "sample"];
  const rows = groups.map((g) => [
    String(g.count),
    String(g.perMinute),
    g.logId,
    g.reason || "-",
    g.firstSeen,
    g.lastSeen,
    g.sample.length > 80 ? `${g.sample.slice(0, 77)}...` : g.sample,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)].join("\n");
}
