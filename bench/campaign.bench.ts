/**
 * campaign.cut_points, campaign.cut_points_per_s: the exhaustive single-cut power-cut
 * campaign over the standard COS scenarios (hil/campaign.ts). Each point = fork the chip,
 * tear the operation, remount, judge old-or-new. Measured warm (steady state): on a pool of
 * one worker thread per core (CampaignPool: each scenario whole on one thread), after warm-up
 * campaigns that build each thread's per-seed base devices and scenario set-ups (rollover
 * fills the store once), keep step-boundary fingerprints (reused only when the boundary
 * chip's cells and the judge's inputs are equal) and warm the JIT; scenario runs, boundary
 * record sets and every point's fork, tear, mount and judge are in the time. The one-thread
 * in-process rate and the first (cold pool) campaign's rate are in the note.
 */
import type { BenchModule } from "./harness.ts";
import { median } from "./harness.ts";
import { cpus, loadavg } from "node:os";
import { CampaignPool, runCampaign, type CampaignResult } from "../hil/index.ts";
import { defaultJobs } from "../src/flash-store/index.ts";

/**
 * Warm-up campaigns. The optimizing compiler works on a background thread, starved while both
 * cores run campaign threads: a pool settles only after ~20 campaigns (measured: runs 3-19
 * 1-6k points/s, from run 20 on 4-10k, median ~6k, on this machine). The first campaign's
 * rate (cold pool: thread start, set-ups, JIT) is reported too.
 */
const WARMUP_RUNS = 20;
/** Timed campaigns; a campaign is only ~30 ms and single ones swing 2x on this machine, so the median of many. */
const SAMPLES = 15;

/** Median wall and CPU points per second (CPU: every thread of the process) of SAMPLES warm campaigns. */
async function rates(run: () => Promise<CampaignResult>): Promise<{ wall: number; cpu: number; result: CampaignResult; first: number }> {
  const t = performance.now();
  const cold = await run();
  const first = cold.cutPoints / ((performance.now() - t) / 1000);
  for (let i = 1; i < WARMUP_RUNS; i++) await run();
  const wall: number[] = [];
  const cpu: number[] = [];
  let result: CampaignResult | undefined;
  for (let i = 0; i < SAMPLES; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    result = await run();
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (result.failures.length) throw new Error(`campaign found ${result.failures.length} failures: ${result.failures[0]!.replay}`);
    wall.push(result.cutPoints / seconds);
    cpu.push(result.cutPoints / ((c.user + c.system) / 1e6));
  }
  return { wall: median(wall), cpu: median(cpu), result: result as CampaignResult, first };
}

const bench: BenchModule = {
  ids: ["campaign.cut_points", "campaign.cut_points_per_s"],
  async run() {
    const options = { seed: 1, traces: false, now: () => performance.now() };
    const serial = await rates(() => runCampaign(options));
    const jobs = defaultJobs();
    const pool = new CampaignPool(jobs);
    let pooled: Awaited<ReturnType<typeof rates>>;
    try {
      pooled = await rates(() => pool.run(options));
    } finally {
      await pool.close();
    }
    const r = pooled.result;
    return {
      "campaign.cut_points": { value: r.cutPoints, unit: "points", note: `${Object.keys(r.perScenario).length} scenarios, ${r.fastVerdicts} by record set, the rest by APDU judge` },
      "campaign.cut_points_per_s": {
        value: Math.round(pooled.wall), unit: "points/s", goal: ">= 5000",
        note: `warm campaign wall time on ${jobs} worker threads (median of ${SAMPLES} after ${WARMUP_RUNS} warm-up campaigns; the first, on a cold pool: ${Math.round(pooled.first)}/s): ${Math.round(pooled.wall / jobs)}/s per thread, ${Math.round(pooled.cpu)} per CPU second; one thread in process ${Math.round(serial.wall)}/s (${Math.round(serial.cpu)} per CPU second); load avg ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores`,
      },
    };
  },
};
export default bench;
