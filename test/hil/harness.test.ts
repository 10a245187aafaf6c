/** The harness end to end on the simulated target: suites, campaign + merge, traces, replay, CLI exit codes. */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  runHil, runCampaign, mergeCampaignResults, parseShard, cutTrace, scenarioByName, replayTrace, parseTrace, oldOrNew, writeReports, parseIssuerKeys, openTarget, draft,
  type Scenario,
} from "../../hil/index.ts";
import { issue } from "../../hil/ukey-ops.ts";
import { simIssuerKeys, HIL_START_SECONDS } from "../../hil/index.ts";
import { createUkey } from "../../src/cos/index.ts";
import { ModelStore } from "../../src/flash-store/index.ts";
import { Rng, VirtualClock } from "../../src/sim/index.ts";
import { InProcessChannel, serveUsbip } from "../../src/transport/index.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, encoding: "utf8" });

describe("hil run on sim:memory", () => {
  it("passes conformance and tax-rules with full error-code coverage, and writes reports with a wear map", async () => {
    const { report, trace } = await runHil({ target: "sim:memory", suites: ["conformance", "tax-rules"], seed: 4, quick: true });
    const bad = report.results.filter((r) => r.status !== "pass");
    expect(bad).toEqual([]);
    expect(report.results.find((r) => r.suite === "coverage")?.status).toBe("pass");
    expect(report.wearMap?.eraseCounts.length).toBe(64);
    expect(trace.events[0]).toMatchObject({ kind: "run", seed: 4, tool: "hil run" });
    expect(trace.events.at(-1)).toMatchObject({ kind: "end", ok: true });
    expect((trace.events.at(-1) as { imageDigest?: string }).imageDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(trace.events.some((e) => e.kind === "flash")).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "hil-"));
    try {
      const files = writeReports(report, dir);
      expect(readFileSync(files.html, "utf8")).toContain("<svg");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the same seed gives a byte-identical trace; replay says identical; a tampered trace diverges", async () => {
    const suites = ["power-cut", "conformance", "performance"];
    const a = await runHil({ target: "sim:memory", suites, seed: 9, quick: true });
    const b = await runHil({ target: "sim:memory", suites, seed: 9, quick: true });
    expect(a.report.results.every((r) => r.status === "pass")).toBe(true);
    expect(a.trace.toJsonLines()).toBe(b.trace.toJsonLines());
    expect(a.trace.events.some((e) => e.kind === "fault")).toBe(true);
    const events = parseTrace(a.trace.toJsonLines());
    expect((await replayTrace(events)).identical).toBe(true);
    const i = events.findIndex((e) => e.kind === "apdu");
    const tampered = events.map((e, k) => (k === i && e.kind === "apdu" ? { ...e, response: "6f00" } : e));
    const cmp = await replayTrace(tampered);
    expect(cmp.identical).toBe(false);
    if (!cmp.identical) expect(cmp.index).toBe(i);
  });

  it("differential finds no difference between the NAND target and the ModelStore reference", async () => {
    const { report } = await runHil({ target: "sim:memory", suites: ["differential"], seed: 12, quick: true });
    expect(report.results.map((r) => [r.name, r.status, r.message])).toEqual([["in-process target vs reference model", "pass", undefined]]);
  });

  it("sim:IMAGE keeps the card across runs: the second run logs in instead of personalizing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hil-img-"));
    try {
      const image = join(dir, "ukey.img");
      const first = await runHil({ target: `sim:${image}`, suites: ["conformance", "tax-rules"], seed: 3, quick: true });
      expect(first.report.results.filter((r) => r.status === "fail" || r.status === "error")).toEqual([]);
      expect(first.report.results.filter((r) => r.status === "skip").map((r) => r.name).sort()).toEqual([
        "offline window: 3 days allowed, 1 s later refused; bureau contact reopens it", "secure clock: a rolled-back time source stops issuing",
      ]);
      const second = await runHil({ target: `sim:${image}`, suites: ["conformance"], seed: 3, quick: true });
      expect(second.report.results.every((r) => r.status === "pass")).toBe(true);
      const setPins = (t: typeof first.trace) => t.events.filter((e) => e.kind === "apdu" && e.command.startsWith("84e6")).length;
      expect(setPins(first.trace)).toBeGreaterThan(0);
      expect(setPins(second.trace)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs on a hardware-like target reached only through an ApduChannel (no simulator extras)", async () => {
    const card = createUkey({ store: new ModelStore(), clock: new VirtualClock(HIL_START_SECONDS * 1000), rng: new Rng(77), serial: "UK00000000000042" });
    const opened: string[] = [];
    const openChannel = async (uri: string) => {
      opened.push(uri);
      return new InProcessChannel(card, uri);
    };
    const { report, trace } = await runHil({ target: "usb:1234:5678", suites: ["conformance", "tax-rules", "power-cut", "differential"], seed: 5, quick: true, keys: simIssuerKeys(), openChannel });
    expect(opened).toEqual(["usb:1234:5678"]);
    expect(report.results.filter((r) => r.status === "fail" || r.status === "error")).toEqual([]);
    expect(report.results.filter((r) => r.status === "skip").map((r) => r.suite).sort()).toEqual(["differential", "power-cut", "tax-rules", "tax-rules"]);
    expect(report.wearMap).toBeUndefined();
    expect(trace.events.some((e) => e.kind === "flash")).toBe(false);
    expect((trace.events.at(-1) as { imageDigest?: string }).imageDigest).toBeUndefined();
    await expect(runHil({ target: "usb:1234:5678", suites: ["conformance"], seed: 5, openChannel })).rejects.toThrow(/issuer-key file/);
  });

  it("runs over a real transport: USB/IP with CCID to a served Ukey (src/transport's openChannel)", async () => {
    const card = createUkey({ store: new ModelStore(), clock: new VirtualClock(HIL_START_SECONDS * 1000), rng: new Rng(78), serial: "UK00000000000043" });
    const server = await serveUsbip(card, { port: 0 });
    try {
      const { report, trace } = await runHil({ target: server.target, suites: ["conformance", "tax-rules"], seed: 6, quick: true, keys: simIssuerKeys() });
      expect(report.results.filter((r) => r.status === "fail" || r.status === "error")).toEqual([]);
      expect(report.results.find((r) => r.suite === "coverage")?.status).toBe("pass");
      expect(trace.events.filter((e) => e.kind === "apdu").length).toBeGreaterThan(100);
    } finally {
      await server.close();
    }
  });

  it("refuses bad targets, suites and issuer-key files with clear errors", async () => {
    await expect(runHil({ target: "sim:memory", suites: ["nope"], seed: 1 })).rejects.toThrow(/unknown suite "nope"/);
    await expect(openTarget("sim:", { seed: 1 })).rejects.toThrow(/sim:memory or sim:PATH/);
    await expect(openTarget("usbip://127.0.0.1:1", { seed: 1 })).rejects.toThrow(/issuer-key file/);
    await expect(openTarget("nonsense:thing", { seed: 1, keys: simIssuerKeys() })).rejects.toThrow(/target "nonsense:thing"/);
    expect(() => parseIssuerKeys("{}")).toThrow(/format/);
    expect(() => parseIssuerKeys(JSON.stringify({ format: "ukeysim-issuer-keys/1", transportKey: "zz" }))).toThrow(/transportKey/);
  });
});

describe("power-cut campaign", () => {
  it("judges every cut point of a scenario old-or-new; shards merge to the whole; bad merges are refused", async () => {
    const whole = await runCampaign({ seed: 3, scenarios: ["void", "pin-change"], traces: false });
    expect(whole.cutPoints).toBeGreaterThan(5);
    expect(whole.failures).toEqual([]);
    const parts = await Promise.all([1, 2, 3].map((i) => runCampaign({ seed: 3, scenarios: ["void", "pin-change"], shard: parseShard(`${i}/3`), traces: false })));
    const merged = mergeCampaignResults(parts);
    expect(merged.cutPoints).toBe(whole.cutPoints);
    expect(merged.items).toEqual(whole.items);
    expect(() => mergeCampaignResults([parts[0]!, parts[1]!])).toThrow(/missing: 3\/3/);
    expect(() => mergeCampaignResults([parts[0]!, parts[0]!, parts[1]!, parts[2]!])).toThrow(/more than once/);
    expect(() => mergeCampaignResults([{ ...parts[0]!, shard: undefined } as never])).toThrow(/malformed campaign result: shard/);
    const other = { ...parts[2]!, campaignId: "x" };
    expect(() => mergeCampaignResults([parts[0]!, parts[1]!, other])).toThrow(/different campaigns/);
  });

  it("the record-set fast path agrees with judging every point through APDUs", async () => {
    const fast = await runCampaign({ seed: 6, scenarios: ["issue", "pin-verify"], traces: false });
    const full = await runCampaign({ seed: 6, scenarios: ["issue", "pin-verify"], traces: false, fullJudge: true });
    expect(fast.fastVerdicts).toBeGreaterThan(fast.cutPoints / 2);
    expect(full.fastVerdicts).toBe(0);
    expect(full.cutPoints).toBe(fast.cutPoints);
    expect([fast.failures.length, full.failures.length]).toEqual([0, 0]);
  });

  it("catches a step that is not atomic (two commits in one step) and saves a replayable minimal trace", async () => {
    const twoInOne: Scenario = {
      name: "two-issues-in-one-step", description: "a deliberately non-atomic step",
      watch: (k) => [0, 1].map((i) => ({ code: k.profile.purchases[0]!.invoiceCode, number: k.profile.purchases[0]!.startNumber + i })),
      steps: () => [{ name: "two", run: async (c) => { await issue(c.send, draft(c.keys.profile, {}, 100)); await issue(c.send, draft(c.keys.profile, {}, 100)); } }],
    };
    const r = await runCampaign({ seed: 8, customScenarios: [twoInOne] });
    expect(r.failures.length).toBeGreaterThan(0);
    const f = r.failures[0]!;
    expect(f.reason).toMatch(/neither the state before the step nor the one after/);
    expect(f.replay).toMatch(/--seed 8 --scenario two-issues-in-one-step .*--only \d+/);
    const events = parseTrace(f.trace!);
    expect(events.some((e) => e.kind === "fault")).toBe(true);
    expect(events.at(-1)).toMatchObject({ kind: "end", ok: false });
    const again = await cutTrace(8, twoInOne, f.cut, undefined);
    expect(again.toJsonLines()).toBe(f.trace);
  });

  it("two cuts: every mutating operation of the recovery (mount, power-on, login) after each first cut", async () => {
    const r = await runCampaign({ seed: 4, scenarios: ["pin-change"], cuts: 2, traces: false });
    expect(r.cutPoints).toBeGreaterThan(20);
    expect(r.failures).toEqual([]);
    const first = await runCampaign({ seed: 4, scenarios: ["pin-change"], cuts: 1, traces: false });
    expect(r.cutPoints).toBeGreaterThan(first.cutPoints);
    const f = (await runCampaign({ seed: 4, scenarios: ["pin-change"], cuts: 2, traces: false, shard: parseShard("1/50") }));
    expect(f.items.every((i) => i % 50 === 0)).toBe(true);
    const listed = await runCampaign({ seed: 4, scenarios: ["pin-change"], cuts: 2, traces: false, shard: parseShard("1/50"), listPoints: true });
    const p = listed.points![0]!;
    expect(p.second).toBeGreaterThan(p.cut);
    const t = await cutTrace(4, scenarioByName("pin-change"), p.cut, p.second, 2);
    expect(t.events.at(-1)).toMatchObject({ kind: "end", ok: true });
    expect(t.events.filter((e) => e.kind === "fault").map((e) => (e as { fault: string }).fault)).toEqual(["power-cut", "power-cut-in-recovery"]);
    expect((await replayTrace(t.events)).identical).toBe(true);
  });

  it("the judge tells a lost invoice or a regained PIN try from old-or-new", () => {
    const before = { key: "a", userTries: 6, soTries: 10 };
    const after = { key: "b", userTries: 6, soTries: 10 };
    expect(oldOrNew(before, before, after)).toBe("old");
    expect(oldOrNew(after, before, after)).toBe("new");
    expect(oldOrNew({ key: "c", userTries: 6, soTries: 10 }, before, after)).toBeNull();
    expect(oldOrNew({ key: "a", userTries: 5, soTries: 10 }, before, after)).toBe("old"); // a try may be lost
    expect(oldOrNew({ key: "a", userTries: 6, soTries: 10 }, { ...before, userTries: 4 }, { ...before, userTries: 4 })).toBeNull(); // never regained
    expect(oldOrNew({ key: "a", userTries: 3, soTries: 10 }, before, after)).toBeNull(); // at most one try per cut
    expect(oldOrNew({ key: "a", userTries: 4, soTries: 10 }, before, after, 2, 6)).toBe("old"); // two cuts: two tries
    expect(oldOrNew({ key: "a", userTries: 6, soTries: 10 }, { ...before, userTries: 4 }, { ...before, userTries: 4 }, 2, 6)).toBe("old"); // a login restored them
  });

  it("a cut point's minimal trace replays identically and ends with the verdict and the image digest", async () => {
    const sc = scenarioByName("issue");
    const r = await runCampaign({ seed: 5, scenarios: ["issue"], mode: "random", samples: 3, traces: false });
    expect(r.cutPoints).toBe(3);
    const cut = (await runCampaign({ seed: 5, scenarios: ["issue"], traces: false })).items.length;
    expect(cut).toBeGreaterThan(3);
    const point = (await runCampaign({ seed: 5, scenarios: ["issue"], traces: false, listPoints: true, shard: parseShard("2/5") })).points![0]!;
    const t1 = await cutTrace(5, sc, point.cut, undefined);
    const events = t1.events;
    expect(events[0]).toMatchObject({ kind: "run", tool: "campaign power-cut" });
    expect(events.filter((e) => e.kind === "fault")).toHaveLength(1);
    expect(events.some((e) => e.kind === "flash" && (e as { index?: number }).index === point.cut)).toBe(true);
    const last = events.at(-1) as { kind: string; ok?: boolean; imageDigest?: string };
    expect(last.kind).toBe("end");
    expect(last.ok).toBe(true);
    expect(last.imageDigest).toMatch(/^[0-9a-f]{64}$/);
    expect((await replayTrace(events)).identical).toBe(true);
  });
});

describe("CLI", () => {
  it("exit codes: 0 pass, 2 bad input, 4 divergence; merge checks shards", () => {
    const dir = mkdtempSync(join(tmpdir(), "hil-cli-"));
    try {
      const run = cli("hil", "run", "--target", "sim:memory", "--suite", "conformance", "--seed", "2", "--quick", "--trace", join(dir, "t.jsonl"), "--report-dir", dir);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/passed, 0 failed/);
      expect(cli("replay", join(dir, "t.jsonl")).status).toBe(0);
      const lines = readFileSync(join(dir, "t.jsonl"), "utf8").split("\n");
      const k = lines.findIndex((l) => l.includes('"kind":"apdu"'));
      lines[k] = lines[k]!.replace(/"response":"[0-9a-f]*"/, '"response":"6f00"');
      writeFileSync(join(dir, "bad.jsonl"), lines.join("\n"));
      const div = cli("replay", join(dir, "bad.jsonl"));
      expect(div.status).toBe(4);
      expect(div.stdout).toMatch(/diverged at event/);
      writeFileSync(join(dir, "junk.jsonl"), "not json\n");
      const junk = cli("replay", join(dir, "junk.jsonl"));
      expect(junk.status).toBe(2);
      expect(junk.stderr).toMatch(/trace line 1: not JSON/);
      expect(cli("hil", "run", "--target", "sim:memory", "--seed", "-1").status).toBe(2);
      expect(cli("hil", "run", "--no-such-option").status).toBe(2); // commander usage errors too
      expect(cli("replay").status).toBe(2);
      const bad = cli("campaign", "power-cut", "--mode", "sometimes");
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/--mode must be exhaustive or random/);
      expect(cli("campaign", "power-cut", "--shard", "3/2").status).toBe(2);
      const s1 = cli("campaign", "power-cut", "--scenario", "pin-change", "--seed", "3", "--shard", "1/2", "--out", join(dir, "s1.json"));
      expect(s1.status, s1.stderr).toBe(0);
      const missing = cli("campaign", "merge", join(dir, "s1.json"));
      expect(missing.status).toBe(2);
      expect(missing.stderr).toMatch(/missing: 2\/2/);
      const notCampaign = cli("campaign", "merge", join(dir, "t.jsonl"));
      expect(notCampaign.status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
