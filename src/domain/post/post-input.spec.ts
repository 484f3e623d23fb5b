import { describe, expect, it } from "vitest";
import { checkAll, DomainError, is } from "../errors.js";
import { parsePostId } from "./post.js";
import { ErrEmptyText, ErrInvalidPostId, ErrTextNotUnicode } from "./post-errors.js";
import { parsePostText } from "./post-text.js";

describe("what the domain lets reach storage", () => {
  it("refuses ids with a control character (NUL: PostgreSQL cannot store it) or an unpaired surrogate", () => {
    for (const id of ["a\u0000", "a\nb", "a\ud800"]) {
      expect(() => parsePostId(id)).toThrowError(expect.objectContaining({ reason: ErrInvalidPostId.reason }));
    }
    expect(parsePostId("ordinary-id")).toBe("ordinary-id");
  });

  it("refuses a text with an unpaired surrogate, which UTF-8 would store as another text", () => {
    expect(() => parsePostText("a\ud800b")).toThrowError(expect.objectContaining({ reason: ErrTextNotUnicode.reason }));
    expect(parsePostText("a😀b")).toBe("a😀b");
  });
});

describe("checkAll", () => {
  it("returns every result, or throws the first failure carrying the others", () => {
    expect(checkAll([() => 1, () => "two"])).toEqual([1, "two"]);
    let thrown: unknown;
    try {
      checkAll([() => parsePostId(""), () => 3, () => parsePostText(" "), () => parsePostId("\u0000")]);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DomainError);
    const first = thrown as DomainError;
    expect(first.reason).toBe("POST_ID_MISSING");
    expect(first.others.map((e) => e.reason)).toEqual(["TEXT_EMPTY", "POST_ID_INVALID"]);
    expect(is(first.others[0], ErrEmptyText)).toBe(true);
  });

  it("lets an error that is no domain failure through at once", () => {
    const bug = new TypeError("a bug");
    expect(() =>
      checkAll([
        () => {
          throw bug;
        },
      ]),
    ).toThrow(bug);
  });
});
