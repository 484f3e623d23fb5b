import { describe, expect, it } from "vitest";
import { DomainError, findDomainError, is } from "./errors.js";

const ErrThing = DomainError.sentinel("THING_BROKEN", "thing broken");
const ErrOther = DomainError.sentinel("OTHER", "other");

describe("sentinel errors", () => {
  it("are found through wraps and plain causes, like Go's errors.Is", () => {
    const wrapped = ErrThing.wrap("thing 42 broken", { thingId: "42" });
    const outer = new Error("while doing work", { cause: wrapped });
    expect(is(ErrThing, ErrThing)).toBe(true);
    expect(is(wrapped, ErrThing)).toBe(true);
    expect(is(outer, ErrThing)).toBe(true);
    expect(is(outer, ErrOther)).toBe(false);
    expect(findDomainError(outer)).toBe(wrapped);
    expect(wrapped).toMatchObject({ reason: "THING_BROKEN", message: "thing 42 broken", context: { thingId: "42" } });
  });

  it("keep a low-level cause for the log", () => {
    const driverError = new Error("connection refused");
    const wrapped = ErrThing.wrap("thing unavailable", {}, driverError);
    expect(wrapped.cause).toBe(driverError);
    expect(is(wrapped, ErrThing)).toBe(true);
  });

  it("capture no stack frames: expected failures are not bugs", () => {
    const wrapped = ErrThing.wrap("thing 42 broken");
    expect(wrapped.stack?.split("\n")).toEqual(["DomainError: thing 42 broken"]);
  });
});
