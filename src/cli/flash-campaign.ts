/**
 * ukeysim flash-campaign: the exhaustive single power-cut campaign on a random scenario.
 * Every mutating flash operation is torn once on a fork; the remounted store must equal the
 * model before or after the interrupted transaction. Failures print a replay command.
 */
import type { Command } from "commander";
import { campaignKey, defaultJobs, MAX_JOBS, randomScenario, runCutCampaign, runCutCampaignParallel, SMALL_GEOMETRY, type Geometry } from "../flash-store/index.ts";
import { parseSeed } from "../sim/index.ts";

const GEOMETRIES: Record<string, Geometry> = {
  tiny: { pageBytes: 512, spareBytes: 16, pagesPerBlock: 8, blocks: 16 },
  small: SMALL_GEOMETRY,
};

function positiveInt(name: string, text: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new Error(`--${name} must be an integer 1..${max}, got "${text}"`);
  return Number(text);
}

function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new Error(`--shard must be i/n with 0 <= i < n, got "${text}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/**
 * Below this many transactions `--jobs` defaults to 1: a worker thread takes about a second to
 * start (loading the store through tsx), more than such a campaign takes on one thread.
 */
export const PARALLEL_FROM_TXS = 2000;

export function registerFlashCampaign(program: Command): void {
  program
    .command("flash-campaign")
    .description("tear every flash operation of a random scenario once, remount and check all-or-nothing")
    .option("--seed <n>", "scenario and tear seed", "1")
    .option("--txs <n>", "transactions in the scenario", "100")
    .option("--keys <n>", "distinct ids per record type", "10")
    .option("--big-chance <p>", "chance that a put is a multi-page record (0..1)", "0.05")
    .option("--geometry <name>", `chip geometry: ${Object.keys(GEOMETRIES).join(", ")}`, "tiny")
    .option("--cut <k>", "replay only the cut at operation k")
    .option("--shard <i/n>", "only cuts with operation index k % n == i")
    .option("--no-resume", "do not commit again after each remount")
    .option("--jobs <n>", `worker threads (default: one per core from ${PARALLEL_FROM_TXS} transactions, else 1); same result as one thread`)
    .action(async (options: { seed: string; txs: string; keys: string; bigChance: string; geometry: string; cut?: string; shard?: string; resume: boolean; jobs?: string }) => {
      const seed = parseSeed(options.seed);
      const txs = positiveInt("txs", options.txs, 100_000);
      const keys = positiveInt("keys", options.keys, 1_000_000);
      const geometry = GEOMETRIES[options.geometry];
      if (!geometry) throw new Error(`--geometry must be one of ${Object.keys(GEOMETRIES).join(", ")}, got "${options.geometry}"`);
      if (options.cut !== undefined && !/^\d+$/.test(options.cut)) throw new Error(`--cut must be an operation index, got "${options.cut}"`);
      const bigChance = Number(options.bigChance);
      if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(options.bigChance)) throw new Error(`--big-chance must be a number in [0, 1], got "${options.bigChance}"`);
      const scenario = randomScenario(seed, { txs, keys, bigChance });
      const key = campaignKey(seed);
      const jobs = options.jobs !== undefined ? positiveInt("jobs", options.jobs, MAX_JOBS) : options.cut === undefined && txs >= PARALLEL_FROM_TXS ? defaultJobs() : 1;
      const campaign = {
        geometry, key, seed, resume: options.resume,
        ...(options.cut !== undefined ? { only: new Set([Number(options.cut)]) } : {}),
        ...(options.shard !== undefined ? { shard: parseShard(options.shard) } : {}),
      };
      const started = performance.now();
      const result = jobs === 1 ? runCutCampaign(scenario, campaign) : await runCutCampaignParallel(scenario, campaign, jobs);
      const seconds = (performance.now() - started) / 1000;
      const base = `ukeysim flash-campaign --seed ${seed} --txs ${txs} --keys ${keys} --big-chance ${options.bigChance} --geometry ${options.geometry}${options.resume ? "" : " --no-resume"}`;
      console.log(`flash-campaign: ${scenario.name}, seed ${seed}, ${result.operations} operations, ${result.cutPoints} cut points in ${seconds.toFixed(1)} s (${Math.round(result.cutPoints / Math.max(seconds, 1e-9))}/s${jobs > 1 ? ` on ${jobs} threads` : ""}), ${result.failures.length} failures`);
      if (options.cut !== undefined && result.cutPoints === 0) console.log(`  operation ${options.cut} is a read or beyond the scenario: nothing to tear`);
      for (const f of result.failures) console.log(`  FAIL tx ${f.tx}: ${f.reason}\n    ${f.replay}\n    replay: ${base} --cut ${f.cut}`);
      if (result.failures.length === 0) console.log(`replay: ${base}`);
      if (result.failures.length) process.exitCode = 1;
    });
}
