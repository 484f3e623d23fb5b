import { describe, expect, it } from "vitest";
import { encodeGrpcMessage } from "./grpc-response.js";

describe("encodeGrpcMessage", () => {
  it("escapes only bytes outside 0x20-0x7E and '%', as PROTOCOL-HTTP2.md says", () => {
    expect(encodeGrpcMessage("post not found: a/b;c,d?e")).toBe("post not found: a/b;c,d?e");
    expect(encodeGrpcMessage("100% sure")).toBe("100%25 sure");
    expect(encodeGrpcMessage("投稿")).toBe("%E6%8A%95%E7%A8%BF");
    expect(encodeGrpcMessage("tab\there\nnewline")).toBe("tab%09here%0Anewline");
  });

  it("round-trips through decodeURIComponent", () => {
    const message = "h3_res: 16 ∉ [0, 15] — 投稿が見つかりません 😀 100%";
    expect(decodeURIComponent(encodeGrpcMessage(message))).toBe(message);
  });
});
