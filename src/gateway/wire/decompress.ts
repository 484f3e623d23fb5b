import { brotliDecompressSync, gunzipSync } from "node:zlib";

/** What the gateway reads of an answer (an error body, a trailer frame) is a few hundred bytes; more is not one. */
const MAX_READ_BYTES = 64 * 1024;

/**
 * Bytes the API server compressed as the request was (Connect's
 * content-encoding, gRPC-Web's grpc-encoding), decompressed for the gateway to
 * read the status in them; the caller still gets the bytes as they came.
 * Throws for an encoding it does not know or bytes that do not decompress.
 */
export function decompressed(bytes: Uint8Array, encoding: string | undefined): Uint8Array {
  const options = { maxOutputLength: MAX_READ_BYTES };
  switch (encoding) {
    case undefined:
    case "identity":
      return bytes;
    case "gzip":
      return gunzipSync(bytes, options);
    case "br":
      return brotliDecompressSync(bytes, options);
    default:
      throw new Error(`unknown encoding ${encoding}`);
  }
}
