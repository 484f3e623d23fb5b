// world-atlas ships bare TopoJSON files; esbuild bundles the JSON, and this says what it holds.
declare module "world-atlas/countries-110m.json" {
  const topology: import("topojson-specification").Topology;
  export default topology;
}
