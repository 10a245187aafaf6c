/**
 * ukeysim hil run | campaign power-cut | campaign merge | replay: thin wrappers over hil/.
 * Exit codes (docs/hil.md): 0 all passed / identical, 1 a check failed, 2 bad usage or input
 * (nothing was run or changed), 3 the harness crashed, 4 replay diverged.
 */
import { CommanderError, InvalidArgumentError, type Command } from "commander";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  runHil, checkSuites, writeReports, summarize, runCampaignParallel, mergeCampaignResults, parseShard, readTrace, replayTrace, parsePowerSpec, readIssuerKeys,
  TargetError, IssuerKeysError, TraceFormatError, ReplayError, PowerControlError, SCENARIOS, scenarioByName, CAMPAIGN_FORMAT, type CampaignResult,
} from "../../hil/index.ts";
import { FileTrace, parseSeed } from "../sim/index.ts";
import { defaultJobs, MAX_JOBS } from "../flash-store/index.ts";

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, CRASH: 3, DIVERGED: 4 } as const;

const INPUT_ERRORS = [TargetError, IssuerKeysError, TraceFormatError, ReplayError, PowerControlError, RangeError, InvalidArgumentError];

/** Known bad input is rethrown (main prints it, exit 2); anything else is a crash (exit 3). */
async function guarded(body: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await body();
  } catch (error) {
    if (INPUT_ERRORS.some((k) => error instanceof k)) {
      console.error(`ukeysim: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(EXIT.USAGE);
    }
    console.error(`ukeysim: crashed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    process.exit(EXIT.CRASH);
  }
  process.exitCode = code;
}

/** Parsed inside the action (not by commander, whose argument errors exit 1): bad input exits 2. */
function seedOf(text: string): number {
  return parseSeed(text);
}
const collect = (v: string, prev: string[]) => [...prev, v];

function progress(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    const width = 30;
    const filled = total ? Math.round((done / total) * width) : width;
    process.stderr.write(`\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`);
    if (done >= total) process.stderr.write("\n");
  };
}

/** Usage errors of these commands (unknown option, missing argument...) exit 2, as docs/hil.md says; help and version stay 0. */
function usageExits2(command: Command): Command {
  return command.exitOverride((error) => {
    if (error.exitCode !== 0) throw new CommanderError(EXIT.USAGE, error.code, error.message);
    throw error;
  });
}

export function registerHil(program: Command): void {
  const hil = program.command("hil").description("hardware-in-the-loop harness: run suites against a simulated or real Ukey");
  usageExits2(hil.command("run"))
    .description("run test suites against a target and write reports and a trace")
    .requiredOption("--target <uri>", "sim:memory, sim:IMAGE-PATH, or a transport URI (usbip://, vpcd://, serial:...)")
    .option("--suite <name>", "conformance, tax-rules, power-cut, differential, performance (repeatable; default all but performance)", collect, [])
    .option("--seed <n>", "seed of the run", "1")
    .option("--report-dir <dir>", "write report.json, junit.xml and report.html here")
    .option("--trace <file>", "write the JSON-lines trace here")
    .option("--power <spec>", "hardware power switch: uhubctl:LOCATION:PORT or relay:DEVICE")
    .option("--issuer-keys <file>", "bureau-side keys for a hardware target (docs/hil.md)")
    .option("--quick", "bounded iterations")
    .action((o: { target: string; suite: string[]; seed: string; reportDir?: string; trace?: string; power?: string; issuerKeys?: string; quick?: boolean }) =>
      guarded(async () => {
        const seed = seedOf(o.seed);
        const suites = checkSuites(o.suite);
        const power = o.power ? parsePowerSpec(o.power) : undefined;
        const keys = o.issuerKeys ? readIssuerKeys(o.issuerKeys) : undefined;
        if (o.trace) mkdirSync(dirname(o.trace), { recursive: true });
        const trace = o.trace ? new FileTrace(o.trace) : undefined;
        const { report } = await runHil({
          target: o.target, suites, seed, ...(trace ? { trace } : {}), ...(power ? { power } : {}), ...(keys ? { keys } : {}), quick: o.quick === true,
          // A persistent image lives in real time (it may have been issued today).
          imageClockStartMs: Date.now(),
        });
        if (o.trace) report.traceFile = o.trace;
        for (const r of report.results) {
          console.log(`${r.status.toUpperCase().padEnd(5)} ${r.suite} / ${r.name}${r.message ? `: ${r.message}` : ""}${r.metrics ? ` ${JSON.stringify(r.metrics)}` : ""}`);
          if (r.status === "fail" && r.detail) console.log(r.detail.split("\n").map((l) => `      ${l}`).join("\n"));
        }
        if (o.reportDir) {
          const files = writeReports(report, o.reportDir);
          console.log(`reports: ${files.json} ${files.junit} ${files.html}`);
        }
        const c = summarize(report.results);
        console.log(`${c.pass} passed, ${c.fail} failed, ${c.error} errors, ${c.skip} skipped (seed ${seed})`);
        const failed = c.fail + c.error > 0;
        if (failed) console.log(`replay: ${report.replay}${o.trace ? ` (or: ukeysim replay ${o.trace})` : ""}`);
        return failed ? (c.error > 0 && c.fail === 0 ? EXIT.CRASH : EXIT.FAILED) : EXIT.OK;
      }),
    );

  const campaign = program.command("campaign").description("fault campaigns over the standard COS scenarios");
  usageExits2(campaign.command("power-cut"))
    .description("cut the power at every (or random) flash operation of COS scenarios; judge old-or-new through APDUs")
    .option("--scenario <name>", `one of ${SCENARIOS.map((s) => s.name).join(", ")} (repeatable; default all)`, collect, [])
    .option("--mode <mode>", "exhaustive or random", "exhaustive")
    .option("--cuts <n>", "1, or 2 (a second cut during each recovery)", "1")
    .option("--samples <n>", "random mode: cut points drawn", "200")
    .option("--seed <n>", "seed of the campaign", "1")
    .option("--shard <i/n>", "run shard i of n (1-based)", "1/1")
    .option("--only <cut[,second]>", "re-run one cut point of one --scenario")
    .option("--full-judge", "judge every cut point through APDUs (no record-set fast path)")
    .option("--jobs <n>", "worker threads (default: one per core with --cuts 2, else 1: a thread costs about a second of start-up); the result is the same as on one thread")
    .option("--out <file>", "write the shard's result JSON here (for campaign merge)")
    .option("--failures-dir <dir>", "write each failure's minimal trace here (default: beside --out)")
    .action((o: { scenario: string[]; mode: string; cuts: string; samples: string; seed: string; shard: string; only?: string; fullJudge?: boolean; jobs?: string; out?: string; failuresDir?: string }) =>
      guarded(async () => {
        const seed = seedOf(o.seed);
        if (o.mode !== "exhaustive" && o.mode !== "random") throw new InvalidArgumentError(`--mode must be exhaustive or random, got "${o.mode}"`);
        if (o.cuts !== "1" && o.cuts !== "2") throw new InvalidArgumentError(`--cuts must be 1 or 2, got "${o.cuts}"`);
        if (!/^[1-9]\d{0,6}$/.test(o.samples)) throw new InvalidArgumentError(`--samples must be a positive integer, got "${o.samples}"`);
        for (const s of o.scenario) scenarioByName(s);
        const shard = parseShard(o.shard);
        let only: { scenario: string; cut: number; second?: number } | undefined;
        if (o.only !== undefined) {
          const m = /^(\d+)(?:,(\d+))?$/.exec(o.only);
          if (!m || o.scenario.length !== 1) throw new InvalidArgumentError("--only takes CUT or CUT,SECOND and exactly one --scenario");
          only = { scenario: o.scenario[0]!, cut: Number(m[1]), ...(m[2] ? { second: Number(m[2]) } : {}) };
        }
        if (o.jobs !== undefined && !(/^\d{1,3}$/.test(o.jobs) && Number(o.jobs) >= 1 && Number(o.jobs) <= MAX_JOBS)) throw new InvalidArgumentError(`--jobs must be an integer 1..${MAX_JOBS}, got "${o.jobs}"`);
        const jobs = o.jobs !== undefined ? Number(o.jobs) : o.cuts === "2" && only === undefined ? defaultJobs() : 1;
        const onProgress = progress("power-cut");
        const result = await runCampaignParallel({
          seed, scenarios: o.scenario, mode: o.mode, cuts: o.cuts === "2" ? 2 : 1, shard, samples: Number(o.samples), fullJudge: o.fullJudge === true, ...(only ? { only } : {}), ...(onProgress ? { onProgress } : {}),
          now: () => performance.now(),
        }, jobs);
        if (o.out) {
          mkdirSync(dirname(o.out), { recursive: true });
          writeFileSync(o.out, JSON.stringify(result, null, 2) + "\n");
        }
        const dir = o.failuresDir ?? (o.out ? join(dirname(o.out), "failures") : undefined);
        for (const f of result.failures) {
          console.log(`FAIL ${f.scenario} step ${f.step} cut ${f.cut}${f.second !== undefined ? `+${f.second}` : ""}: ${f.reason?.split("\n")[0]}`);
          console.log(`  replay: ${f.replay}`);
          if (dir && f.trace) {
            mkdirSync(dir, { recursive: true });
            const file = join(dir, `${f.scenario}-cut${f.cut}${f.second !== undefined ? `-${f.second}` : ""}.jsonl`);
            writeFileSync(file, f.trace);
            console.log(`  trace: ${file} (ukeysim replay ${file})`);
          }
        }
        const per = Object.entries(result.perScenario).map(([k, v]) => `${k} ${v.cutPoints}${v.failures ? ` (${v.failures} failed)` : ""}`).join(", ");
        console.log(`campaign ${result.campaignId} shard ${shard.index}/${shard.count}: ${result.cutPoints} cut points, ${result.passed} passed, ${result.failures.length} failed [${per}] (seed ${seed})`);
        return result.failures.length ? EXIT.FAILED : EXIT.OK;
      }),
    );
  usageExits2(campaign.command("merge"))
    .description("combine shard results of one campaign (checks: same campaign, none missing, none doubled)")
    .argument("<files...>", "shard result files written with --out")
    .option("--out <file>", "write the merged result here")
    .action((files: string[], o: { out?: string }) =>
      guarded(async () => {
        const parts: CampaignResult[] = files.map((f) => {
          let v: unknown;
          try {
            v = JSON.parse(readFileSync(f, "utf8"));
          } catch (e) {
            throw new RangeError(`${f}: not a readable JSON campaign result (${(e as Error).message})`);
          }
          if ((v as { format?: unknown })?.format !== CAMPAIGN_FORMAT) throw new RangeError(`${f}: not a campaign result (format must be "${CAMPAIGN_FORMAT}")`);
          return v as CampaignResult;
        });
        const merged = mergeCampaignResults(parts);
        if (o.out) writeFileSync(o.out, JSON.stringify(merged, null, 2) + "\n");
        for (const f of merged.failures) console.log(`FAIL ${f.scenario} step ${f.step} cut ${f.cut}: replay: ${f.replay}`);
        console.log(`campaign ${merged.campaignId}: ${files.length} shards, ${merged.cutPoints} cut points, ${merged.passed} passed, ${merged.failures.length} failed`);
        return merged.failures.length ? EXIT.FAILED : EXIT.OK;
      }),
    );

  usageExits2(program.command("replay"))
    .description("re-run a trace (hil run or campaign cut point) and report identical or the first divergence")
    .argument("<trace>", "JSON-lines trace file")
    .option("--target <uri>", "run it against this target instead of the one recorded")
    .action((file: string, o: { target?: string }) =>
      guarded(async () => {
        const events = readTrace(file);
        const cmp = await replayTrace(events, o.target);
        if (cmp.identical) {
          console.log(`identical: ${cmp.events} events`);
          return EXIT.OK;
        }
        console.log(`diverged at event ${cmp.index}:`);
        for (const e of cmp.context) console.log(`  ctx      ${JSON.stringify(e)}`);
        console.log(`  expected ${cmp.expected ? JSON.stringify(cmp.expected) : "(end of trace)"}`);
        console.log(`  actual   ${cmp.actual ? JSON.stringify(cmp.actual) : "(end of run)"}`);
        return EXIT.DIVERGED;
      }),
    );
}
