import type { FeatureCollection, MultiLineString } from "geojson";
import { feature, mesh } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
// Natural Earth at 1:110m, bundled by esbuild: the page fetches no tiles or data at run time.
import countries110m from "world-atlas/countries-110m.json";

/** The world's base map: land, and the borders between countries. */
export interface World {
  readonly land: FeatureCollection;
  readonly borders: MultiLineString;
}

let world: World | undefined;

/** The base map, converted from TopoJSON once, on first use. */
export function worldMap(): World {
  if (world !== undefined) return world;
  const topology = countries110m as Topology<{ land: GeometryCollection; countries: GeometryCollection }>;
  world = {
    land: feature(topology, topology.objects.land),
    // Each shared arc once (a !== b): coastlines are the land's outline already.
    borders: mesh(topology, topology.objects.countries, (a, b) => a !== b),
  };
  return world;
}
