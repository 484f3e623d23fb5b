#!/usr/bin/env node
import { type DescExtension, type DescFile, type DescMethod, getOption, hasOption } from "@bufbuild/protobuf";
import type { GenExtension } from "@bufbuild/protobuf/codegenv2";
import { MethodOptions_IdempotencyLevel as Idempotency, type MethodOptions } from "@bufbuild/protobuf/wkt";
import { createEcmaScriptPlugin, runNodeJs, type Schema } from "@bufbuild/protoplugin";
import { codeTable } from "../shared/code-table.js";
import { type MethodRetryPolicy, RETRY_DEFAULTS, serviceConfigRetryableCodesOf } from "../shared/retry-rules.js";

/**
 * buf plugin: for every service, each method's retry policy, from the
 * method's idempotency_level and its (bazbii.api.v1.retry) option, as a
 * TypeScript module for src/client, plus one gRPC service config JSON
 * (gRFC A6 retryPolicy) that makes grpc-js and grpc-go clients retry-aware:
 * for the methods such a client can repeat safely whatever its caller sends.
 * Run by `buf generate` with strategy: all (the service config covers all files).
 */

const RETRY_OPTION = "bazbii.api.v1.retry";

/** bazbii.api.v1.RetryOptions as read here; the extension is found in the request, not imported. */
interface RetryOptionsShape {
  idempotencyKeyField: string;
  never: boolean;
}

function findRetryExtension(files: readonly DescFile[]): DescExtension | undefined {
  for (const file of files) {
    for (const ext of file.extensions) if (ext.typeName === RETRY_OPTION) return ext;
  }
  return undefined;
}

function policyOf(method: DescMethod, ext: DescExtension | undefined): MethodRetryPolicy {
  const idempotency =
    method.idempotency === Idempotency.NO_SIDE_EFFECTS
      ? "NO_SIDE_EFFECTS"
      : method.idempotency === Idempotency.IDEMPOTENT
        ? "IDEMPOTENT"
        : "UNKNOWN";
  const options =
    ext !== undefined && hasOption(method, ext as GenExtension<MethodOptions, RetryOptionsShape>)
      ? getOption(method, ext as GenExtension<MethodOptions, RetryOptionsShape>)
      : undefined;
  let idempotencyKeyField: string | undefined;
  if (options?.idempotencyKeyField) {
    const field = method.input.fields.find((f) => f.name === options.idempotencyKeyField);
    if (field === undefined || field.fieldKind !== "scalar") {
      throw new Error(
        `${method.parent.typeName}/${method.name}: idempotency_key_field "${options.idempotencyKeyField}" is not a scalar field of ${method.input.typeName}`,
      );
    }
    idempotencyKeyField = field.localName;
  }
  return {
    idempotency,
    ...(idempotencyKeyField === undefined ? {} : { idempotencyKeyField }),
    never: options?.never ?? false,
  };
}

/** gRPC's status code names, as service configs spell them. */
function grpcCodeName(code: number): string {
  return (codeTable[code as keyof typeof codeTable]?.name ?? "unknown").toUpperCase();
}

function generate(schema: Schema): void {
  const ext = findRetryExtension(schema.allFiles);
  const methodConfig: unknown[] = [];
  for (const file of schema.files) {
    if (file.services.length === 0) continue;
    const f = schema.generateFile(`${file.name}_retry.ts`);
    f.preamble(file);
    f.print("// Retry policy of each method, from its idempotency_level and (bazbii.api.v1.retry).");
    f.print("// The client library (src/client) derives what to retry from these and the code table.");
    for (const service of file.services) {
      f.print();
      f.print(`/** Retry policies of ${service.typeName}, keyed by "<service>/<method>". */`);
      f.print(`export const ${service.name}RetryPolicies = {`);
      for (const method of service.methods) {
        const policy = policyOf(method, ext);
        f.print(`  ${JSON.stringify(`${service.typeName}/${method.name}`)}: ${JSON.stringify(policy)},`);
        const codes = serviceConfigRetryableCodesOf(policy);
        if (codes.length > 0) {
          methodConfig.push({
            name: [{ service: service.typeName, method: method.name }],
            retryPolicy: {
              maxAttempts: RETRY_DEFAULTS.maxAttempts,
              initialBackoff: `${RETRY_DEFAULTS.initialBackoffMs / 1000}s`,
              maxBackoff: `${RETRY_DEFAULTS.maxBackoffMs / 1000}s`,
              backoffMultiplier: RETRY_DEFAULTS.backoffMultiplier,
              retryableStatusCodes: codes.map(grpcCodeName),
            },
          });
        }
      }
      f.print("} as const;");
    }
  }
  const config = schema.generateFile("service_config.json");
  config.print(
    JSON.stringify(
      {
        methodConfig,
        retryThrottling: { maxTokens: RETRY_DEFAULTS.throttleMaxTokens, tokenRatio: RETRY_DEFAULTS.throttleTokenRatio },
      },
      null,
      2,
    ),
  );
}

runNodeJs(
  createEcmaScriptPlugin({
    name: "protoc-gen-retry-policy",
    version: "v1",
    generateTs: generate,
  }),
);
