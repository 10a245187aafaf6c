/**
 * Replay a trace: re-run what it records (a hil run or one campaign cut point) from its
 * seed and parameters, and compare the new trace with it event by event.
 */
import type { TraceEvent } from "../src/sim/index.ts";
import { compareTraces, type TraceComparison } from "./trace-file.ts";
import { runHil, HIL_TOOL } from "./run.ts";
import { cutTrace, scenarioByName, CAMPAIGN_TOOL } from "./campaign.ts";

export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReplayError";
  }
}

export async function rerun(events: readonly TraceEvent[], targetOverride?: string): Promise<TraceEvent[]> {
  const run = events[0];
  if (!run || run.kind !== "run") throw new ReplayError('a trace starts with a "run" event');
  const p = run.params as Record<string, unknown>;
  if (run.tool === HIL_TOOL) {
    const target = targetOverride ?? (typeof p.target === "string" ? p.target : undefined);
    if (!target) throw new ReplayError("the trace names no target: give --target");
    if (!Array.isArray(p.suites) || !p.suites.every((s) => typeof s === "string")) throw new ReplayError("the trace's run event has no suites list");
    const { trace } = await runHil({ target, suites: p.suites as string[], seed: run.seed, quick: p.quick === true });
    const out = trace.events;
    // the run event names the target the trace was made on; the rest must match
    if (targetOverride && out[0]?.kind === "run") out[0] = { ...out[0], params: { ...out[0].params, target: p.target } };
    return out;
  }
  if (run.tool === CAMPAIGN_TOOL) {
    if (targetOverride && targetOverride !== "sim:memory") throw new ReplayError("campaign traces replay on the simulator only (--target sim:memory)");
    if (typeof p.scenario !== "string" || typeof p.cut !== "number") throw new ReplayError("campaign trace without scenario/cut parameters");
    const cuts = p.cuts === 2 ? 2 : 1;
    const second = typeof p.second === "number" ? p.second : undefined;
    return (await cutTrace(run.seed, scenarioByName(p.scenario), p.cut, second, cuts)).events;
  }
  throw new ReplayError(`unknown tool "${run.tool}" in the trace (expected "${HIL_TOOL}" or "${CAMPAIGN_TOOL}")`);
}

export async function replayTrace(events: readonly TraceEvent[], targetOverride?: string): Promise<TraceComparison> {
  return compareTraces(events, await rerun(events, targetOverride));
}
