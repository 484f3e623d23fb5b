import { defineConfig } from "vitest/config";

/** Tests that measure a process under load (memory, latency): they run alone, after the others. */
const alone = ["test/stream-resilience.spec.ts"];

export default defineConfig({
  test: {
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Wire tests start real servers on ephemeral ports; files run in parallel, each with its own.
    pool: "forks",
    projects: [
      {
        extends: true,
        test: { name: "parallel", include: ["src/**/*.spec.ts", "test/**/*.spec.ts"], exclude: alone },
      },
      {
        extends: true,
        test: { name: "alone", include: alone, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
