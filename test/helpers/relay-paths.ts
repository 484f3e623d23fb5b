import { HeatmapService } from "../../src/gen/bazbii/feed/v1/heatmap_service_pb.js";
import { UserPostService } from "../../src/gen/bazbii/post/v1/user_post_service_pb.js";
import { type CallOptions, callWire, type Outcome, type Protocol } from "./wire-clients.js";

/** One of the gateway's two ways to relay a call, reached through a method that takes it. */
export interface RelayPath {
  readonly name: string;
  /** The method's URL path, and a request in Connect JSON, for tests that speak HTTP themselves. */
  readonly route: string;
  readonly json: string;
  /** A call that needs no token; `padding` characters make its message as large as a test needs. */
  call(protocol: Protocol, baseUrl: string, options?: CallOptions, padding?: number): Promise<Outcome>;
}

/**
 * GetHeatmap is decoded at the gateway (its h3_res is checked) and re-encoded
 * for the API server; Get is passed on as the caller's bytes (byte-relay.ts).
 * Tests of the hop run against both.
 */
export const relayPaths: readonly RelayPath[] = [
  {
    name: "decoding relay (GetHeatmap)",
    route: "/bazbii.feed.v1.HeatmapService/GetHeatmap",
    json: '{"h3Res":3}',
    call: (protocol, baseUrl, options, padding = 0) =>
      callWire(protocol, baseUrl, HeatmapService.method.getHeatmap, { h3Res: 3, within: "x".repeat(padding) }, options),
  },
  {
    name: "byte relay (Get)",
    route: "/bazbii.post.v1.UserPostService/Get",
    json: '{"id":"x"}',
    call: (protocol, baseUrl, options, padding = 0) =>
      callWire(protocol, baseUrl, UserPostService.method.get, { id: `x${"x".repeat(padding)}` }, options),
  },
];
