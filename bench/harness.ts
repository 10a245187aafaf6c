/**
 * The benchmark contract. Each `bench/*.bench.ts` file default-exports one `BenchModule`;
 * `npm run bench [-- --filter PREFIX]` runs the modules whose ids match and writes
 * bench-results.json: {"when", "machine", "metrics": {"<id>": {"value", "unit", "goal"}}}.
 * Metric ids are dotted and stable: issues and closing notes name them.
 */
export interface Metric {
  value: number;
  unit: string;
  /** The figure we aim for, as text ("<= 50", ">= 20000"), or absent when there is none. */
  goal?: string;
  /** How it was measured, in a few words, when the id alone does not say. */
  note?: string;
}

export interface BenchModule {
  /** Every metric id the module may report; used to decide whether a filter selects it. */
  ids: readonly string[];
  /**
   * Measures the metrics; `wants(id)` says whether the run's filter selects a metric, so a
   * module may skip the slow ones nobody asked for (it may still return them: main drops them).
   */
  run(wants: (id: string) => boolean): Promise<Record<string, Metric>>;
}

/** Median of repeated samples: robust against a noisy neighbour on a 2-core machine. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError("median of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError("percentile of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/** Runs `body` repeatedly for about `ms` milliseconds and returns operations per second. */
export function ratePerSecond(ms: number, body: () => void): number {
  const start = performance.now();
  let count = 0;
  let elapsed = 0;
  do {
    body();
    count++;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (count * 1000) / elapsed;
}
