/**
 * campaign.cut_points, campaign.cut_points_per_s: the exhaustive single-cut power-cut
 * campaign over the standard COS scenarios (hil/campaign.ts). Each point = fork the chip,
 * tear the operation, remount, judge old-or-new. Measured warm (steady state): on a pool of
 * one worker thread per core (CampaignPool: each scenario whole on one thread), after warm-up
 * campaigns that build each thread's per-seed base devices and scenario set-ups (rollover
 * fills the store once) and warm the JIT; scenario runs and boundary judges are included in
 * the time. The one-thread in-process rate is in the note.
 */
import type { BenchModule } from "./harness.ts";
import { median } from "./harness.ts";
import { cpus, loadavg } from "node:os";
import { CampaignPool, runCampaign, type CampaignResult } from "../hil/index.ts";
import { defaultJobs } from "../src/flash-store/index.ts";

const WARMUP_RUNS = 3;
const SAMPLES = 7;

/** Median wall and CPU points per second (CPU: every thread of the process) of SAMPLES warm campaigns. */
async function rates(run: () => Promise<CampaignResult>): Promise<{ wall: number; cpu: number; result: CampaignResult }> {
  for (let i = 0; i < WARMUP_RUNS; i++) await run();
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
  return { wall: median(wall), cpu: median(cpu), result: result as CampaignResult };
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
        note: `warm campaign wall time on ${jobs} worker threads (median of ${SAMPLES} after ${WARMUP_RUNS} warm-up campaigns): ${Math.round(pooled.wall / jobs)}/s per thread, ${Math.round(pooled.cpu)} per CPU second; one thread in process ${Math.round(serial.wall)}/s (${Math.round(serial.cpu)} per CPU second); load avg ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores`,
      },
    };
  },
};
export default bench;
