/**
 * Where @grpc/proto-loader finds our schemas and what they import
 * (google/api/annotations.proto, from google-proto-files), for the grpc-js
 * clients the tests use as an outside client would.
 */
export const PROTO_INCLUDE_DIRS = ["proto", "node_modules/google-proto-files"];
