/**
 * OTEL_TRACES_SAMPLER's values this process understands (the specification's
 * own samplers). Apart from sampler.ts so that reading the configuration does
 * not load the OpenTelemetry SDK, which a process without a collector never
 * needs.
 */
export const SAMPLER_NAMES = [
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
  "always_on",
  "always_off",
  "traceidratio",
] as const;

export type SamplerName = (typeof SAMPLER_NAMES)[number];
