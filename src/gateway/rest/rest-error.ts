import { create, createRegistry, fromBinary, type JsonValue, toJson } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import type { ConnectError } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { codeTable } from "../../shared/code-table.js";

/** The detail types we know how to write as JSON: every google.rpc error detail. */
const detailTypes = createRegistry(file_google_rpc_error_details);

const TYPE_URL_PREFIX = "type.googleapis.com/";

/** An error as a REST answer: Google's JSON error format (AIP-193's HTTP mapping). */
export interface RestError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: { readonly error: RestStatus };
}

export interface RestStatus {
  /** The HTTP status, as Google's APIs repeat it. */
  readonly code: number;
  readonly message: string;
  /** The canonical code's name, e.g. NOT_FOUND. */
  readonly status: string;
  /** Each detail as JSON with its `@type`, in the order the error has them. */
  readonly details: readonly JsonValue[];
}

/**
 * `{"error":{"code":404,"message":"...","status":"NOT_FOUND","details":[{"@type":
 * "type.googleapis.com/google.rpc.ErrorInfo", ...}]}}` with the HTTP status of
 * the code table: the same code, message and details the RPC protocols carry,
 * whether the gateway made the error or the API server sent it. A detail of a
 * type not known here is not dropped (grpc-gateway #1842 drops them): it keeps
 * its `@type` and its bytes, base64, as `value`. `Retry-After` comes along
 * where the RPC answer has it.
 */
export function restError(err: ConnectError): RestError {
  const spec = codeTable[err.code];
  const headers: Record<string, string> = {};
  const retryAfter = err.metadata.get("retry-after");
  if (retryAfter !== null) headers["retry-after"] = retryAfter;
  return {
    status: spec.httpStatus,
    headers,
    body: {
      error: {
        code: spec.httpStatus,
        message: err.rawMessage,
        status: spec.name.toUpperCase(),
        details: detailsJson(err),
      },
    },
  };
}

function detailsJson(err: ConnectError): JsonValue[] {
  return err.details.map((detail): JsonValue => {
    if ("desc" in detail) {
      // Made here: a message to write.
      const json = toJson(detail.desc, create(detail.desc, detail.value)) as Record<string, JsonValue>;
      return { "@type": TYPE_URL_PREFIX + detail.desc.typeName, ...json };
    }
    // From the wire: its type name and bytes.
    const desc = detailTypes.getMessage(detail.type);
    if (desc === undefined) return { "@type": TYPE_URL_PREFIX + detail.type, value: base64Encode(detail.value) };
    const json = toJson(desc, fromBinary(desc, detail.value)) as Record<string, JsonValue>;
    return { "@type": TYPE_URL_PREFIX + detail.type, ...json };
  });
}
