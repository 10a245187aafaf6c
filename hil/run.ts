/**
 * `hil run`: open a target, run the chosen suites, collect a RunReport, write the trace.
 * The run's seed drives every random choice; the trace (no timings in it) is the same for
 * the same seed, target and suites, so `ukeysim replay` can compare byte for byte.
 */
import { Rng, MemoryTrace, type TraceSink, TeeTrace } from "../src/sim/index.ts";
import type { RunReport, CaseResult } from "./report.ts";
import { openTarget, RunTrace, TargetError, type Target } from "./target.ts";
import { SUITES, SUITE_NAMES, coverageCase } from "./suites.ts";
import type { SuiteContext } from "./suite-kit.ts";
import type { PowerControl } from "./power.ts";
import type { IssuerKeys } from "./issuer-keys.ts";
import type { ApduChannel } from "../src/transport/index.ts";

export const HIL_TOOL = "hil run";

export interface HilRunOptions {
  target: string;
  suites?: readonly string[];
  seed: number;
  /** Where trace events go besides the in-memory copy returned. */
  trace?: TraceSink;
  power?: PowerControl;
  keys?: IssuerKeys;
  /** Bounded iterations (tests). */
  quick?: boolean;
  /** Opens non-sim targets (default src/transport's openChannel). */
  openChannel?: (uri: string) => Promise<ApduChannel>;
  /** Start of a sim:IMAGE target's virtual clock (see OpenTargetOptions). */
  imageClockStartMs?: number;
  /** Monotonic clock for durations (performance.now by default); never written to the trace. */
  now?: () => number;
}

export function checkSuites(names: readonly string[]): string[] {
  const list = names.length ? [...names] : ["conformance", "tax-rules", "power-cut", "differential"];
  for (const n of list) if (!SUITES[n]) throw new TargetError(`unknown suite "${n}"; known: ${SUITE_NAMES.join(", ")}`);
  return list;
}

export function replayCommandOf(o: { target: string; suites: readonly string[]; seed: number; quick?: boolean }): string {
  return `ukeysim hil run --target ${o.target} ${o.suites.map((s) => `--suite ${s}`).join(" ")} --seed ${o.seed}${o.quick ? " --quick" : ""}`;
}

export async function runHil(o: HilRunOptions): Promise<{ report: RunReport; trace: MemoryTrace }> {
  const suites = checkSuites(o.suites ?? []);
  const memory = new MemoryTrace();
  const rt = new RunTrace(o.trace ? new TeeTrace([memory, o.trace]) : memory);
  const params = { target: o.target, suites, quick: o.quick === true };
  rt.emit({ kind: "run", seed: o.seed, tool: HIL_TOOL, params });
  const target: Target = await openTarget(o.target, { seed: o.seed, trace: rt, ...(o.power ? { power: o.power } : {}), ...(o.keys ? { keys: o.keys } : {}), ...(o.openChannel ? { openChannel: o.openChannel } : {}), ...(o.imageClockStartMs !== undefined ? { imageClockStartMs: o.imageClockStartMs } : {}) });
  const rng = new Rng(o.seed);
  const ctx: SuiteContext = {
    target, send: (a) => target.channel.transmit(a), rng, trace: rt, seenSw: new Set(), now: o.now ?? (() => performance.now()), quick: o.quick === true,
  };
  const results: CaseResult[] = [];
  try {
    for (const name of suites) {
      ctx.rng = rng.fork(name);
      results.push(...(await SUITES[name]!(ctx)));
    }
    if (suites.includes("conformance") && suites.includes("tax-rules")) results.push(coverageCase(ctx.seenSw, o.target === "sim:memory"));
  } finally {
    await target.close().catch(() => undefined);
  }
  const ok = results.every((r) => r.status === "pass" || r.status === "skip");
  rt.emit({ kind: "end", ok, ...(target.sim ? { imageDigest: target.sim.imageDigest() } : {}) });
  const report: RunReport = {
    tool: HIL_TOOL, target: o.target, seed: o.seed, params, results, replay: replayCommandOf({ target: o.target, suites, seed: o.seed, quick: o.quick === true }),
    ...(target.sim ? { wearMap: target.sim.wearMap() } : {}),
  };
  return { report, trace: memory };
}
