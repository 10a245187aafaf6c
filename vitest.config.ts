import { defineConfig } from "vitest/config";

// Two cores: keep the pool small so CPU-heavy property tests do not starve each other.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "property-tests/**/*.test.ts", "hil/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ["default", "junit"] : ["default"],
    outputFile: { junit: "test-results/junit.xml" },
  },
});
