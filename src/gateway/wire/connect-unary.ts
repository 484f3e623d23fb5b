import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  contentTypeUnaryJson,
  contentTypeUnaryRegExp,
  errorFromJsonBytes,
  errorToJsonBytes,
  parseContentType,
  parseTimeout,
} from "@connectrpc/connect/protocol-connect";
import { codeTable } from "../../shared/code-table.js";
import { stackless } from "../../shared/errors/public-error.js";
import { headerValue } from "../../shared/http/header-value.js";
import { fromHttpStatus, upstreamProtocolError } from "../upstream/upstream-errors.js";
import { decompressed } from "./decompress.js";
import type { WireProtocol } from "./wire-protocol.js";

/** errorFromJsonBytes's answer for a body that is no Connect error. */
const NOT_AN_ERROR = new ConnectError("not a Connect error body", Code.Unknown);

/** The Connect protocol's unary calls: the message is the body, an error is JSON with an HTTP status. */
export const connectUnary = {
  accepts: (contentType: string) => contentTypeUnaryRegExp.test(contentType),
  encodingHeader: "content-encoding",
  envelopeBytes: 0,
  upstreamHttp: "1.1",
  timeoutHeader: "connect-timeout-ms",
  parseTimeout(value) {
    const { timeoutMs, error } = parseTimeout(value, Number.MAX_SAFE_INTEGER);
    return error ?? timeoutMs;
  },
  formatTimeout: (ms) => String(ms),
  protocolHeaders: ["content-type", "content-encoding", "connect-protocol-version"],

  readAnswer(answer, contentType, rc) {
    const answerType = headerValue(answer.headers, "content-type");
    if (answer.status === 200) {
      const parsed = parseContentType(answerType ?? null);
      const binary = parseContentType(contentType)?.binary;
      if (parsed === undefined || parsed.stream || parsed.binary !== binary) {
        throw upstreamProtocolError(rc, new Error(`answer of content-type ${answerType} to a ${contentType} request`));
      }
      if (binary && answer.headers["content-encoding"] === undefined && !isWireFormat(answer.body)) {
        throw upstreamProtocolError(rc, new Error("a 200 answer whose body is not a protobuf message"));
      }
      return undefined;
    }
    if (parseContentType(answerType ?? null)?.binary === false) {
      try {
        const json = decompressed(answer.body, headerValue(answer.headers, "content-encoding"));
        return stackless(() => errorFromJsonBytes(json, undefined, NOT_AN_ERROR));
      } catch {
        // Not a Connect error: an HTTP error page from something in between.
      }
    }
    throw fromHttpStatus(
      answer.status,
      headerValue(answer.headers, "retry-after"),
      rc,
      new Error(`HTTP ${answer.status} (${answerType}) without a Connect error`),
    );
  },

  errorResponse(err) {
    const headers: Record<string, string> = { "content-type": contentTypeUnaryJson };
    err.metadata.forEach((value, key) => {
      headers[key] = value;
    });
    return { status: codeTable[err.code].httpStatus, headers, body: errorToJsonBytes(err, undefined) };
  },
} satisfies WireProtocol & { accepts(contentType: string): boolean };

/**
 * Whether the bytes are a sequence of well-formed protobuf fields: a cheap scan
 * (no schema, no allocation per field) that catches a peer answering garbage
 * with a 200, which the byte relay would otherwise hand to the caller.
 */
function isWireFormat(bytes: Uint8Array): boolean {
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      reader.skip(wireType, fieldNo);
    }
    return reader.pos === reader.len;
  } catch {
    return false;
  }
}
