/**
 * The benchmark contract. Each `bench/*.bench.ts` file default-exports one `BenchModule`;
 * `npm run bench [-- --filter PREFIX]` runs the modules whose ids match and writes
 * bench-results.json: {"when", "machine", "metrics": {"<id>": {"value", "unit", "goal"}},
 * "probes": {"<module file>": [ms before, ms after]}} (speedProbe).
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

/** Words of the speed probe's table: 8 MiB, more than a core's caches, as a full mount's tables are. */
const PROBE_WORDS = 1 << 20;
/** Steps of one probe run: dependent reads and writes at pseudo-random places of the table. */
const PROBE_STEPS = 1 << 22;
/** Runs per probe, the fastest counts (the first ones also wait for the compiler). */
const PROBE_RUNS = 6;
/** An odd multiplier and an increment of a full-period power-of-two linear congruential step. */
const PROBE_MULTIPLIER = 1_664_525;
const PROBE_INCREMENT = 1_013_904_223;

/**
 * Milliseconds of a fixed workload (pseudo-random dependent reads and writes over an 8 MiB
 * table: the kind of work a mount does), the fastest of PROBE_RUNS runs. main.ts prints it before
 * and after each module, so a run made while the machine is slow shows as such: this 2-core
 * VM has spells, minutes long, in which everything (CPU time too) takes about 1.5 times as long.
 */
export function speedProbe(): number {
  const table = new Float64Array(PROBE_WORDS);
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < PROBE_RUNS; run++) {
    const start = performance.now();
    const last = probeRun(table, run + 1);
    best = Math.min(best, performance.now() - start);
    if (!Number.isFinite(last)) throw new Error("speed probe: the table overflowed"); // uses the result: the work cannot be skipped
  }
  return best;
}

/** One run of the probe (a function of its own: compiled whole after the first runs, not while it runs). */
function probeRun(table: Float64Array, seed: number): number {
  let state = seed;
  for (let step = 0; step < PROBE_STEPS; step++) {
    state = (Math.imul(state, PROBE_MULTIPLIER) + PROBE_INCREMENT) | 0;
    const at = state & (PROBE_WORDS - 1);
    table[at] = (table[at] as number) + (table[(at + step) & (PROBE_WORDS - 1)] as number) + 1;
  }
  return table[state & (PROBE_WORDS - 1)] as number;
}
