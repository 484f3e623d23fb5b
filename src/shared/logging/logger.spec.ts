import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

/** The `err` field of the one line logged with `err`. */
function loggedErr(err: unknown): Record<string, unknown> {
  const lines: string[] = [];
  createLogger({ service: "test", level: "info" }, { write: (line: string) => lines.push(line) }).warn({ err }, "m");
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] as string).err;
}

describe("the err serializer", () => {
  it("describes a client error by code and message, without a stack, naming a cause only when it adds something", () => {
    const cause = new Error("post not found: p1");
    expect(loggedErr(new ConnectError("post not found: p1", Code.NotFound, undefined, undefined, cause))).toEqual({
      type: "ConnectError",
      code: "not_found",
      message: "post not found: p1",
    });
    const telling = new TypeError("id is missing");
    expect(loggedErr(new ConnectError("bad id", Code.InvalidArgument, undefined, undefined, telling))).toEqual({
      type: "ConnectError",
      code: "invalid_argument",
      message: "bad id",
      cause: "TypeError: id is missing",
    });
  });

  it("logs a server error in full: stack and cause chain, but neither wire details nor headers", () => {
    const cause = new Error("connection refused");
    const err = new ConnectError("internal error", Code.Internal, { authorization: "Bearer x" }, undefined, cause);
    const logged = loggedErr(err);
    expect(logged).toMatchObject({ type: "ConnectError", code: "internal" });
    expect(logged.stack).toContain("caused by: Error: connection refused");
    expect(logged.message).toContain("connection refused");
    expect(logged).not.toHaveProperty("metadata");
    expect(logged).not.toHaveProperty("details");
  });
});
