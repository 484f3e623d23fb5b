import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorCatalog } from "./catalog.js";
import type { ErrorSpec } from "./error-spec.js";

const specs: ErrorSpec[] = Object.values(errorCatalog);
const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("the public error catalog", () => {
  it.each(specs.map((s) => [s.reason, s] as const))("%s follows AIP-193 and ERROR-MODEL.md", (_reason, spec) => {
    expect(spec.reason).toMatch(/^[A-Z][A-Z0-9_]{0,62}$/);
    // The same parameters in every language, so metadata keys never depend on the locale.
    expect(placeholders(spec.message.ja)).toEqual(placeholders(spec.message.en));
    for (const key of placeholders(spec.message.en)) expect(key).toMatch(/^[a-z][A-Za-z0-9]*$/);
    expect(spec.message.en).not.toMatch(/^(internal server error|error occurred|invalid request)$/i);
    expect(Object.keys(spec.log).length).toBeGreaterThan(0);
    if (spec.code === Code.InvalidArgument) expect(spec.badRequest, "BadRequest").toBeDefined();
    if (spec.code === Code.FailedPrecondition) expect(spec.preconditionFailure, "PreconditionFailure").toBeDefined();
    if (spec.code === Code.NotFound || spec.code === Code.AlreadyExists) {
      expect(spec.resourceInfo, "ResourceInfo").toBeDefined();
    }
    if (spec.code === Code.ResourceExhausted) {
      expect(spec.quotaFailure, "QuotaFailure").toBeDefined();
      expect(spec.retryDelayMs, "RetryInfo").toBeDefined();
    }
  });
});
