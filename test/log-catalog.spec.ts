import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { logmsg } from "../src/shared/logging/log-catalog.js";

async function issued(): Promise<Map<string, string>> {
  const text = await readFile("docs/log-ids.issued", "utf8");
  const entries = text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split("\t") as [string, string]);
  return new Map(entries);
}

describe("the log-ID catalog", () => {
  const entries = Object.values(logmsg);

  it("uses well-formed, unique IDs and fixed messages", () => {
    for (const m of entries) {
      expect(m.id).toMatch(/^(SYS|REQ|GW|API|EVT_[A-Z]+)_\d{3}$/);
      expect(m.msg).toMatch(/^[A-Z][^{}]*[^.]$/); // fixed text: no placeholders, no trailing period
    }
    expect(new Set(entries.map((m) => m.id)).size).toBe(entries.length);
  });

  it("is append-only: every ID ever issued is still here, with its original message", async () => {
    const ever = await issued();
    for (const [id, msg] of ever) {
      const entry = entries.find((m) => m.id === id);
      expect(entry, `${id} was removed or renumbered; retire it instead`).toBeDefined();
      expect(entry?.msg, `${id} was reused for another message`).toBe(msg);
    }
  });

  it("records every ID it issues in docs/log-ids.issued", async () => {
    const ever = await issued();
    for (const m of entries) expect(ever.get(m.id), `add "${m.id}\t${m.msg}" to docs/log-ids.issued`).toBe(m.msg);
  });
});
