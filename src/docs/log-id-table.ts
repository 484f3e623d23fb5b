import { logmsg } from "../shared/logging/log-catalog.js";

/** docs/log-ids.md's table, from the log-ID catalog. */
export function renderLogIdTable(): string {
  const rows = Object.entries(logmsg).map(
    ([name, m]) =>
      `| \`${m.id}\` | ${m.msg} | ${m.level === "by_code" ? "by code (client warn, server error, canceled info)" : m.level} | ${m.layer} | \`logmsg.${name}\` | ${m.retired ? "retired" : "active"} |`,
  );
  return ["| ID | message | level | layer | API | status |", "|---|---|---|---|---|---|", ...rows].join("\n");
}
