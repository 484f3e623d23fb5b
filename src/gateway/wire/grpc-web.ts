import { compressedFlag, encodeEnvelope } from "@connectrpc/connect/protocol";
import {
  contentTypeJson,
  contentTypeProto,
  parseContentType,
  setTrailerStatus,
  trailerFlag,
  trailerParse,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import { headerValue } from "../../shared/http/header-value.js";
import { upstreamProtocolError } from "../upstream/upstream-errors.js";
import { decompressed } from "./decompress.js";
import { checkEnvelopedAnswer, grpc, splitEnvelopes } from "./grpc.js";
import { grpcStatusOf } from "./grpc-status.js";
import type { WireProtocol } from "./wire-protocol.js";

/** gRPC-Web (binary or JSON, not base64 text): the trailers travel as the body's last envelope. */
export const grpcWeb = {
  accepts: (contentType: string) => parseContentType(contentType)?.text === false,
  // Framing and deadline are gRPC's own.
  encodingHeader: grpc.encodingHeader,
  envelopeBytes: grpc.envelopeBytes,
  upstreamHttp: "1.1",
  timeoutHeader: grpc.timeoutHeader,
  parseTimeout: grpc.parseTimeout,
  formatTimeout: grpc.formatTimeout,
  protocolHeaders: ["content-type", "grpc-encoding", "x-grpc-web"],

  readAnswer(answer, contentType, rc) {
    checkEnvelopedAnswer(answer, parseContentType, contentType, rc);
    if (answer.headers["grpc-status"] !== undefined) return grpcStatusOf(answer.headers, rc); // trailers-only
    const envelopes = splitEnvelopes(answer.body);
    const last = envelopes?.at(-1);
    if (last === undefined || (last.flags & trailerFlag) !== trailerFlag) {
      throw upstreamProtocolError(rc, new Error("a gRPC-Web answer without a trailer envelope"));
    }
    // connect-es compresses the trailer frame too when the answer is compressed.
    let trailer: Uint8Array = last.data;
    if ((last.flags & compressedFlag) === compressedFlag) {
      try {
        trailer = decompressed(last.data, headerValue(answer.headers, "grpc-encoding"));
      } catch (err) {
        throw upstreamProtocolError(rc, err);
      }
    }
    return grpcStatusOf(trailerParse(trailer), rc);
  },

  errorResponse(err, contentType) {
    const binary = parseContentType(contentType)?.binary !== false;
    const body = encodeEnvelope(trailerFlag, trailerSerialize(setTrailerStatus(new Headers(), err)));
    return { status: 200, headers: { "content-type": binary ? contentTypeProto : contentTypeJson }, body };
  },
} satisfies WireProtocol & { accepts(contentType: string): boolean };
