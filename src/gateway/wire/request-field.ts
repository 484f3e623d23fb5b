import { type DescField, ScalarType } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { decompressed } from "./decompress.js";

/** What the request says of its own encoding. */
export interface EncodedRequest {
  readonly body: Buffer;
  /** Bytes before the message: gRPC's 5-byte envelope prefix, none for Connect unary. */
  readonly envelopeBytes: number;
  readonly json: boolean;
  /** content-encoding (Connect) or grpc-encoding (gRPC, gRPC-Web), when compressed. */
  readonly encoding: string | undefined;
}

/**
 * Whether a relayed request, still in the caller's bytes, has a non-empty
 * value in a string field: the one place the byte relay reads a message, to
 * know whether a keyed method (Create and its request_id) may be sent again.
 * Anything it cannot read counts as not set, so that nothing is repeated
 * without a key.
 */
export function hasStringField(request: EncodedRequest, field: DescField): boolean {
  if (field.fieldKind !== "scalar" || field.scalar !== ScalarType.STRING) return false;
  try {
    let message: Uint8Array = request.body;
    let compressed = request.encoding !== undefined && request.encoding !== "identity";
    if (request.envelopeBytes > 0) {
      compressed = ((request.body[0] ?? 0) & 1) === 1;
      message = request.body.subarray(request.envelopeBytes, request.envelopeBytes + request.body.readUInt32BE(1));
    }
    if (compressed) message = decompressed(message, request.encoding);
    if (request.json) {
      const json = JSON.parse(Buffer.from(message).toString("utf8")) as Record<string, unknown>;
      const value = json[field.jsonName] ?? json[field.name];
      return typeof value === "string" && value !== "";
    }
    const reader = new BinaryReader(message);
    let set = false;
    while (reader.pos < reader.len) {
      const [number, wireType] = reader.tag();
      // A repeated scalar field: the last value wins, as protobuf decodes it.
      if (number === field.number && wireType === WireType.LengthDelimited) set = reader.bytes().length > 0;
      else reader.skip(wireType, number);
    }
    return set;
  } catch {
    return false;
  }
}
