/**
 * Public face of hil/: the hardware-in-the-loop harness.
 *
 *   const { report, trace } = await runHil({ target: "sim:memory", suites: ["conformance"], seed: 1 });
 *   writeReports(report, "out/");  writeFileSync("run.jsonl", trace.toJsonLines());
 *   const c = await runCampaign({ seed: 1, mode: "exhaustive", cuts: 1, shard: parseShard("1/4") });
 *   const merged = mergeCampaignResults([c1, c2, c3, c4]);
 *   const cmp = await replayTrace(readTrace("run.jsonl"));
 */
export { runHil, checkSuites, replayCommandOf, HIL_TOOL, type HilRunOptions } from "./run.ts";
export { SUITES, SUITE_NAMES, conformance, taxRules, powerCut, differential, performance, coverageCase } from "./suites.ts";
export { runCase, check, CheckFailed, type Suite, type SuiteContext } from "./suite-kit.ts";
export { openTarget, RunTrace, TargetError, type Target, type SimExtras, type OpenTargetOptions } from "./target.ts";
export { SimPowerControl, UhubctlPowerControl, SerialRelayPowerControl, PowerControlError, parsePowerSpec, type PowerControl } from "./power.ts";
export { SimDevice, SIM_GEOMETRY, CAMPAIGN_GEOMETRY, HIL_START_SECONDS, SIM_SERIAL } from "./sim-device.ts";
export { simIssuerKeys, parseIssuerKeys, readIssuerKeys, IssuerKeysError, ISSUER_KEYS_FORMAT, type IssuerKeys } from "./issuer-keys.ts";
export {
  runCampaign, mergeCampaignResults, cutTrace, flashEvent, SCENARIOS, scenarioByName, campaignId, CAMPAIGN_TOOL, CAMPAIGN_FORMAT,
  type CampaignOptions, type CampaignResult, type CampaignFailure, type CampaignMode, type Scenario,
} from "./campaign.ts";
export { CampaignPool, runCampaignParallel, serveCampaignPoolWorker } from "./campaign-pool.ts";
export { runDifferential, compareSequence, diffBase, diffCommand, apduOf, type DiffCommand, type DifferentialResult } from "./differential.ts";
export { replayTrace, rerun, ReplayError } from "./replay.ts";
export { fingerprint, oldOrNew, personalize, draft } from "./ukey-ops.ts";
export { writeReports, toJunitXml, toHtml, summarize, type RunReport, type CaseResult, type WearMap } from "./report.ts";
export { parseShard, inShard, WHOLE, type Shard } from "./shard.ts";
export { parseTrace, readTrace, compareTraces, TraceFormatError, type TraceComparison } from "./trace-file.ts";
export { runDemo, DEMO_TOOL, DEFAULT_DEMO_INVOICES, MAX_DEMO_INVOICES, type DemoOptions, type DemoResult } from "./demo.ts";
