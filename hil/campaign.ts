/**
 * COS-level power-cut campaigns. A scenario is a list of steps, each one host command
 * (at most one commit). It runs once on a simulated Ukey; at every mutating flash
 * operation k the chip is forked and operation k torn on the fork (tearOperationOnFork);
 * a fresh COS is powered on over the fork and judged through APDUs only: its fingerprint
 * (ukey-ops.ts) must equal the one before the step or the one after it: old state or new,
 * nothing lost, no invoice number reused, no PIN try regained.
 *
 * With cuts = 2 each torn fork is cut again at every mutating operation of its recovery
 * (mount, repair, power-on, the judge's reads) before being judged.
 *
 * Work items are (scenario, first cut[, second cut]) in a fixed order; `--shard i/n`
 * takes every n-th item. Results merge (mergeCampaignResults) when they are shards of the
 * same campaign, each present exactly once.
 */
import { PinRef, issuer, call, verifyPin, selectApplication, decodeBatch, type Send, type PurchaseRecord } from "../src/tax/index.ts";
import { Rng, MemoryTrace, toHex, type TraceEvent } from "../src/sim/index.ts";
import { tearOperationOnFork, DecryptCache, type NandChip, type NandOp } from "../src/flash-store/index.ts";
import { sm3 } from "../src/crypto/index.ts";
import { SimDevice, CAMPAIGN_GEOMETRY, HIL_START_SECONDS } from "./sim-device.ts";
import { simIssuerKeys, type IssuerKeys } from "./issuer-keys.ts";
import { personalize, login, draft, issue, issueApdu, voidApdu, exportApdu, changePinApdu, verifyApdu, fingerprint, oldOrNew, describeFingerprint, cardKeyOf, bureau, type Fingerprint } from "./ukey-ops.ts";
import { inShard, WHOLE, type Shard } from "./shard.ts";

export const CAMPAIGN_TOOL = "campaign power-cut";
export const CAMPAIGN_FORMAT = "ukeysim-campaign/1";
export type CampaignMode = "exhaustive" | "random";

/** What a step may use: the device's Send, the issuer keys and the card key once known. */
export interface StepContext {
  send: Send;
  keys: IssuerKeys;
  cardKey: Uint8Array;
}

export interface Step {
  name: string;
  /** Not observed: login, bureau authentication (no commit). */
  prep?: (c: StepContext) => Promise<unknown>;
  /** Observed: the command whose flash operations are cut. */
  run: (c: StepContext) => Promise<unknown>;
}

export interface Scenario {
  name: string;
  description: string;
  /** Starts from a personalized card (default) or a blank one. */
  blank?: boolean;
  /** Uncut set-up on top of that. */
  setup?: (c: StepContext) => Promise<void>;
  steps: (c: StepContext) => Step[];
  /** PINs the judge tries, in order (the current one first). */
  pins?: (k: IssuerKeys) => string[];
  /** Invoices the judge reads back. */
  watch?: (k: IssuerKeys) => { code: string; number: number }[];
}

const code1 = (k: IssuerKeys) => k.profile.purchases[0]!.invoiceCode;
const start1 = (k: IssuerKeys) => k.profile.purchases[0]!.startNumber;
const NEW_PIN = "24681357";

async function issueN(c: StepContext, n: number, amountFen = 100): Promise<void> {
  for (let i = 0; i < n; i++) await issue(c.send, draft(c.keys.profile, {}, amountFen));
}
const loginStep = (c: StepContext) => login(c.send, c.keys.profile.userPin);

function extraBatch(k: IssuerKeys): PurchaseRecord[] {
  const first = k.profile.purchases[0]!;
  return [...k.profile.purchases, { ...first, invoiceCode: "137001900333", startNumber: 1, count: 10, nextNumber: 1, purchasedOn: "20260101", status: 1 }].slice(0, 10);
}

/** The standard COS scenarios, in campaign order. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: "personalize", description: "the bureau's issuance sequence on a blank card, every command cut", blank: true,
    steps: () => {
      let s: Awaited<ReturnType<typeof bureau>>;
      const auth = async (c: StepContext) => {
        await selectApplication(c.send);
        s = await bureau(c.send, c.keys.transportKey);
      };
      const p = (c: StepContext) => c.keys.profile;
      return [
        { name: "set-pins", prep: auth, run: (c) => issuer.setPins(c.send, s, p(c).userPin, p(c).soPin) },
        { name: "set-clock", run: (c) => issuer.setClock(c.send, s, HIL_START_SECONDS) },
        { name: "load-tax-key", run: (c) => issuer.loadTaxKey(c.send, s, p(c).taxKey, p(c).taxCodeAlgorithm) },
        { name: "set-taxpayer", run: (c) => issuer.setTaxpayer(c.send, s, p(c).taxpayer) },
        { name: "set-invoice-types", prep: (c) => verifyPin(c.send, p(c).userPin), run: (c) => issuer.setInvoiceTypes(c.send, s, p(c).invoiceTypes) },
        { name: "sync-purchases", run: (c) => issuer.syncPurchases(c.send, s, p(c).purchases) },
        { name: "set-limits", run: (c) => issuer.setLimits(c.send, s, p(c).limits) },
        { name: "set-bureau-key", run: (c) => issuer.setBureauKey(c.send, s, c.cardKey) },
        { name: "end-personalization", run: (c) => issuer.endPersonalization(c.send, s) },
      ];
    },
  },
  {
    name: "pin-verify", description: "two wrong user PINs (each costs a try), then the right one (tries restored)",
    steps: (): Step[] => [
      { name: "wrong-1", prep: (c) => selectApplication(c.send), run: (c) => call(c.send, verifyApdu("00000000")).catch(() => undefined) },
      { name: "wrong-2", run: (c) => call(c.send, verifyApdu("00000001")).catch(() => undefined) },
      { name: "right", run: (c) => verifyPin(c.send, c.keys.profile.userPin) },
      { name: "so-wrong", run: (c) => call(c.send, verifyApdu("99999999", PinRef.SO)).catch(() => undefined) },
    ],
  },
  {
    name: "pin-change", description: "CHANGE PIN of the user PIN", pins: (k) => [k.profile.userPin, NEW_PIN],
    steps: (): Step[] => [{ name: "change", prep: (c) => selectApplication(c.send), run: (c) => call(c.send, changePinApdu(c.keys.profile.userPin, NEW_PIN)) }],
  },
  {
    name: "issue", description: "three invoices issued offline",
    watch: (k) => [0, 1, 2].map((i) => ({ code: code1(k), number: start1(k) + i })),
    steps: (): Step[] => [0, 1, 2].map((i) => ({ name: `issue-${i + 1}`, prep: loginStep, run: (c: StepContext) => call(c.send, issueApdu(draft(c.keys.profile, {}, 100 + i))) })),
  },
  {
    name: "void", description: "void an issued invoice",
    setup: (c) => issueN(c, 2), watch: (k) => [0, 1].map((i) => ({ code: code1(k), number: start1(k) + i })),
    steps: (): Step[] => [{ name: "void", prep: loginStep, run: (c) => call(c.send, voidApdu(code1(c.keys), start1(c.keys))) }],
  },
  {
    name: "red", description: "a red-letter invoice against an issued one",
    setup: (c) => issueN(c, 2, 1000), watch: (k) => [0, 1, 2].map((i) => ({ code: code1(k), number: start1(k) + i })),
    steps: (): Step[] => [{ name: "red", prep: loginStep, run: (c) => call(c.send, issueApdu(draft(c.keys.profile, { kind: 1, originalCode: code1(c.keys), originalNumber: start1(c.keys) }, 500))) }],
  },
  {
    name: "sync", description: "the bureau syncs stock (a new batch) and limits",
    steps: (): Step[] => {
      let s: Awaited<ReturnType<typeof bureau>>;
      return [
        { name: "sync-purchases", prep: async (c) => { await selectApplication(c.send); s = await bureau(c.send, c.cardKey); }, run: (c) => issuer.syncPurchases(c.send, s, extraBatch(c.keys)) },
        { name: "set-limits", run: (c) => issuer.setLimits(c.send, s, { ...c.keys.profile.limits, maxOfflineCount: 40 }) },
      ];
    },
  },
  {
    name: "confirm", description: "export the pending events, the bureau confirms them",
    setup: (c) => issueN(c, 3), watch: (k) => [0, 1, 2].map((i) => ({ code: code1(k), number: start1(k) + i })),
    steps: (): Step[] => {
      let s: Awaited<ReturnType<typeof bureau>>;
      return [
        { name: "export", prep: loginStep, run: (c) => call(c.send, exportApdu(0)) },
        { name: "confirm", prep: async (c) => { s = await bureau(c.send, c.cardKey); }, run: (c) => issuer.confirmUpload(c.send, s, 3) },
      ];
    },
  },
  {
    name: "rollover", description: "issue on a nearly full store whose old invoices were confirmed: rollover reclaims them",
    setup: async (c) => {
      // issue and confirm in rounds, so the store fills with reclaimable invoices
      for (let round = 0; round < ROLLOVER_ROUNDS; round++) {
        await issueN(c, 16);
        const batch = decodeBatch(await call(c.send, exportApdu(0)));
        const last = batch.events[batch.events.length - 1]?.seq ?? 0;
        const s = await bureau(c.send, c.cardKey);
        await issuer.confirmUpload(c.send, s, last);
        await login(c.send, c.keys.profile.userPin);
      }
    },
    steps: (): Step[] => [0, 1].map((i) => ({ name: `issue-${i + 1}`, prep: loginStep, run: (c: StepContext) => call(c.send, issueApdu(draft(c.keys.profile, {}, 100))) })),
  },
];
const ROLLOVER_ROUNDS = 3;

export function scenarioByName(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new RangeError(`unknown scenario "${name}"; known: ${SCENARIOS.map((x) => x.name).join(", ")}`);
  return s;
}

export interface CampaignOptions {
  seed: number;
  scenarios?: readonly string[];
  mode?: CampaignMode;
  cuts?: 1 | 2;
  shard?: Shard;
  /** Random mode: how many work items to draw (default 200). */
  samples?: number;
  /** Only these (scenario, cut[, second]) items (replay of one failure). */
  only?: { scenario: string; cut: number; second?: number };
  /** Record a trace of each failure (default true). */
  traces?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface PointResult {
  item: number;
  scenario: string;
  step: string;
  cut: number;
  second?: number;
  ok: boolean;
  reason?: string;
}

export interface CampaignFailure extends PointResult {
  replay: string;
  trace?: string;
}

export interface CampaignResult {
  format: typeof CAMPAIGN_FORMAT;
  /** Identifies the campaign: seed, mode, cuts, scenarios, samples (not the shard). */
  campaignId: string;
  params: { seed: number; mode: CampaignMode; cuts: 1 | 2; scenarios: string[]; samples?: number };
  shard: Shard;
  /** Work items in the whole campaign (all shards). */
  totalItems: number;
  cutPoints: number;
  passed: number;
  failures: CampaignFailure[];
  /** Items this shard judged, by index (for merge checks). */
  items: number[];
  perScenario: Record<string, { cutPoints: number; failures: number }>;
}


interface RecordedCut {
  scenario: string;
  step: number;
  stepName: string;
  cut: number;
  op: NandOp;
  torn: NandChip;
}

export function campaignId(p: CampaignResult["params"]): string {
  return toHex(sm3(new TextEncoder().encode(JSON.stringify(p)))).slice(0, 16);
}

function replayCommand(seed: number, scenario: string, cut: number, second?: number, cuts: 1 | 2 = 1): string {
  return `ukeysim campaign power-cut --seed ${seed} --scenario ${scenario} --cuts ${cuts} --only ${cut}${second !== undefined ? `,${second}` : ""}`;
}

/** A recorded Send over a simulated device (APDU events into the trace when asked). */
function sendOf(dev: SimDevice, trace?: MemoryTrace, seq?: { n: number }): Send {
  return async (apdu) => {
    const r = dev.transmit(apdu);
    if (trace && seq) trace.emit({ kind: "apdu", seq: seq.n++, command: toHex(apdu), response: toHex(r) });
    return r;
  };
}

/** A personalized (or blank) device for the campaign, once per seed. */
async function baseDevice(seed: number, keys: IssuerKeys, blank: boolean, cache: DecryptCache, trace?: MemoryTrace, seq?: { n: number }): Promise<{ dev: SimDevice; cardKey: Uint8Array }> {
  const dev = SimDevice.create({ seed, geometry: CAMPAIGN_GEOMETRY, cache });
  dev.powerOn();
  const send = sendOf(dev, trace, seq);
  await selectApplication(send);
  const cardKey = await cardKeyOf(send, keys);
  if (!blank) await personalize(send, keys, HIL_START_SECONDS);
  return { dev, cardKey };
}

async function judge(base: SimDevice, chip: NandChip, pins: string[], watch: { code: string; number: number }[], trace?: MemoryTrace, seq?: { n: number }): Promise<Fingerprint> {
  const dev = base.onChip(chip, 7);
  dev.powerOn();
  return fingerprint(sendOf(dev, trace, seq), pins, watch);
}

interface ScenarioRun {
  prints: Fingerprint[];
  cuts: RecordedCut[];
  /** Mutating ops of the whole scenario run, in order (index = op index). */
  device: SimDevice;
}

/**
 * Runs one scenario and records the torn forks of the cut points `want` selects
 * (by their scenario-local cut ordinal). Returns the boundary fingerprints too.
 */
async function runScenario(sc: Scenario, seed: number, keys: IssuerKeys, cache: DecryptCache, want: (ordinal: number) => boolean): Promise<ScenarioRun & { ordinals: number; opSteps: Map<number, { step: number; name: string; op: NandOp }> }> {
  const { dev, cardKey } = await baseDevice(seed, keys, sc.blank === true, cache);
  const ctx: StepContext = { send: sendOf(dev), keys, cardKey };
  const opSteps = new Map<number, { step: number; name: string; op: NandOp }>();
  if (sc.setup) await sc.setup(ctx);
  const pins = sc.pins?.(keys) ?? [keys.profile.userPin];
  const watch = sc.watch?.(keys) ?? [];
  const steps = sc.steps(ctx);
  const prints: Fingerprint[] = [await judge(dev, dev.chip.fork(), pins, watch)];
  const cuts: RecordedCut[] = [];
  let ordinal = 0;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.prep) await step.prep(ctx);
    dev.chip.setObserver((k, op) => {
      if (op.kind === "read") return;
      opSteps.set(k, { step: i, name: step.name, op });
      if (want(ordinal)) cuts.push({ scenario: sc.name, step: i, stepName: step.name, cut: k, op, torn: tearOperationOnFork(dev.chip, op, new Rng(seed, k)) });
      ordinal++;
    });
    try {
      await step.run(ctx);
    } finally {
      dev.chip.setObserver(null);
    }
    prints.push(await judge(dev, dev.chip.fork(), pins, watch));
  }
  return { prints, cuts, device: dev, ordinals: ordinal, opSteps };
}

/** Mutating operations of the recovery of a torn chip (mount, power-on, judge reads). */
function recoveryOps(base: SimDevice, torn: NandChip, pins: string[], watch: { code: string; number: number }[]): Promise<{ k: number; op: NandOp; torn2: NandChip }[]> {
  const chip = torn.fork();
  const out: { k: number; op: NandOp; torn2: NandChip }[] = [];
  chip.setObserver((k, op) => {
    if (op.kind !== "read") out.push({ k, op, torn2: tearOperationOnFork(chip, op, new Rng(base.seed, 0x5eed ^ k)) });
  });
  return judge(base, chip, pins, watch).then(() => {
    chip.setObserver(null);
    return out;
  });
}

/** Runs a power-cut campaign (or the shard / the single item of it that the options select). */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const mode = options.mode ?? "exhaustive";
  const cuts = options.cuts ?? 1;
  const shard = options.shard ?? WHOLE;
  const names = options.scenarios && options.scenarios.length ? [...options.scenarios] : SCENARIOS.map((s) => s.name);
  const scenarios = names.map(scenarioByName);
  const params: CampaignResult["params"] = { seed: options.seed, mode, cuts, scenarios: names, ...(mode === "random" ? { samples: options.samples ?? 200 } : {}) };
  const keys = simIssuerKeys();
  const cache = new DecryptCache();
  const traces = options.traces !== false;

  // Pass 1: how many first-cut points each scenario has (cheap: nothing is torn).
  const counts: number[] = [];
  for (const sc of scenarios) counts.push((await runScenario(sc, options.seed, keys, cache, () => false)).ordinals);
  const offsets = counts.map((_, i) => counts.slice(0, i).reduce((a, b) => a + b, 0));
  const firstTotal = counts.reduce((a, b) => a + b, 0);
  // Random mode draws first-cut items; second cuts (cuts 2) are all taken under a drawn first cut.
  let chosen: Set<number> | undefined;
  if (mode === "random") {
    const rng = new Rng(options.seed).fork("campaign-random");
    chosen = new Set<number>();
    const want = Math.min(params.samples ?? 200, firstTotal);
    while (chosen.size < want) chosen.add(rng.int(firstTotal));
  }
  const selected = (global: number) => (chosen ? chosen.has(global) : true);

  const result: CampaignResult = {
    format: CAMPAIGN_FORMAT, campaignId: campaignId(params), params, shard, totalItems: 0, cutPoints: 0, passed: 0, failures: [], items: [], perScenario: {},
  };
  const totalEstimate = chosen ? chosen.size : firstTotal;
  let done = 0;
  let item = 0;
  for (let si = 0; si < scenarios.length; si++) {
    const sc = scenarios[si]!;
    if (options.only && options.only.scenario !== sc.name) {
      item += counts[si]!;
      continue;
    }
    const per = (result.perScenario[sc.name] = { cutPoints: 0, failures: 0 });
    const pins = sc.pins?.(keys) ?? [keys.profile.userPin];
    const watch = sc.watch?.(keys) ?? [];
    const run = await runScenario(sc, options.seed, keys, cache, (ord) => selected(offsets[si]! + ord));
    for (const c of run.cuts) {
      const accept = [run.prints[c.step]!, run.prints[c.step + 1]!];
      if (options.only && options.only.cut !== c.cut) continue;
      const subItems: { second?: number; chip: NandChip }[] = [];
      if (cuts === 1) subItems.push({ chip: c.torn });
      else for (const r of await recoveryOps(run.device, c.torn, pins, watch)) subItems.push({ second: r.k, chip: r.torn2 });
      for (const sub of subItems) {
        const index = item++;
        if (options.only && options.only.second !== undefined && options.only.second !== sub.second) continue;
        result.totalItems++;
        if (!options.only && !inShard(index, shard)) continue;
        result.items.push(index);
        result.cutPoints++;
        per.cutPoints++;
        let reason: string | undefined;
        try {
          const print = await judge(run.device, sub.chip, pins, watch);
          if (!oldOrNew(print, accept[0]!, accept[1]!)) reason = `after a cut at op ${c.cut} (${c.op.kind} block ${c.op.block}) in step "${c.stepName}" the card shows neither the state before the step nor the one after:\n  got    ${describeFingerprint(print)}\n  before ${describeFingerprint(accept[0]!)}\n  after  ${describeFingerprint(accept[1]!)}`;
        } catch (error) {
          reason = `after a cut at op ${c.cut} in step "${c.stepName}" the card does not recover: ${error instanceof Error ? error.message : String(error)}`;
        }
        const point: PointResult = { item: index, scenario: sc.name, step: c.stepName, cut: c.cut, ...(sub.second !== undefined ? { second: sub.second } : {}), ok: reason === undefined, ...(reason ? { reason } : {}) };
        if (reason) {
          per.failures++;
          const failure: CampaignFailure = { ...point, replay: replayCommand(options.seed, sc.name, c.cut, sub.second, cuts) };
          if (traces) failure.trace = (await cutTrace(options.seed, sc, c.cut, sub.second, cuts)).toJsonLines();
          result.failures.push(failure);
        } else result.passed++;
      }
      done++;
      options.onProgress?.(done, totalEstimate);
    }
  }
  return result;
}

/**
 * The minimal trace of one cut point: the scenario's APDUs and mutating flash operations
 * (with their op index) up to the cut, the fault, the judge's APDUs on the re-powered
 * device, the verdict and the SM3 digest of the final image. The scenario runs with the
 * power cut armed at op `cut` (torn with the same seeded rng as the campaign's fork), so
 * the trace ends where the power did. `ukeysim replay` re-runs it and compares.
 */
export async function cutTrace(seed: number, sc: Scenario, cut: number, second: number | undefined, cuts: 1 | 2 = 1): Promise<MemoryTrace> {
  const keys = simIssuerKeys();
  const cache = new DecryptCache();
  const reference = await runScenario(sc, seed, keys, cache, () => false);
  const trace = new MemoryTrace();
  const seq = { n: 0 };
  trace.emit({ kind: "run", seed, tool: CAMPAIGN_TOOL, params: { scenario: sc.name, cut, cuts, ...(second !== undefined ? { second } : {}) } });
  const where = reference.opSteps.get(cut);
  if (!where) {
    trace.emit({ kind: "check", seq: seq.n++, name: "cut point exists", ok: false, detail: `scenario ${sc.name} has no mutating flash operation ${cut}` });
    trace.emit({ kind: "end", seq: seq.n++, ok: false });
    return trace;
  }
  const pins = sc.pins?.(keys) ?? [keys.profile.userPin];
  const watch = sc.watch?.(keys) ?? [];
  const { dev, cardKey } = await baseDevice(seed, keys, sc.blank === true, cache, trace, seq);
  const ctx: StepContext = { send: sendOf(dev, trace, seq), keys, cardKey };
  if (sc.setup) await sc.setup(ctx);
  const steps = sc.steps(ctx);
  dev.chip.armPowerCut(cut, new Rng(seed, cut));
  let muted = false;
  for (let i = 0; i < steps.length && !muted; i++) {
    const step = steps[i]!;
    if (step.prep) await step.prep(ctx);
    dev.chip.setObserver((k, op) => {
      if (op.kind !== "read") trace.emit(flashEvent(seq.n++, k, op));
    });
    try {
      await step.run(ctx);
    } catch (error) {
      if (!dev.chip.poweredOff) throw error;
      muted = true;
    } finally {
      dev.chip.setObserver(null);
    }
  }
  trace.emit({ kind: "fault", seq: seq.n++, fault: "power-cut", detail: { op: cut, kind: where.op.kind, block: where.op.block, step: where.name } });
  dev.chip.disarmPowerCut();
  dev.chip.repower();
  if (cuts === 2 && second !== undefined) {
    dev.chip.armPowerCut(second, new Rng(seed, 0x5eed ^ second));
    dev.chip.setObserver((k, op) => {
      if (op.kind !== "read") trace.emit(flashEvent(seq.n++, k, op));
    });
    try {
      await judge(dev, dev.chip, pins, watch);
    } catch (error) {
      if (!dev.chip.poweredOff) throw error;
    }
    dev.chip.setObserver(null);
    trace.emit({ kind: "fault", seq: seq.n++, fault: "power-cut-in-recovery", detail: { op: second } });
    dev.chip.disarmPowerCut();
    dev.chip.repower();
  }
  const accept = [reference.prints[where.step]!, reference.prints[where.step + 1]!];
  let ok = false;
  let detail: string;
  try {
    const print = await judge(dev, dev.chip, pins, watch, trace, seq);
    const verdict = oldOrNew(print, accept[0]!, accept[1]!);
    ok = verdict !== null;
    detail = verdict ? `${verdict} state` : "neither the old state nor the new one";
  } catch (error) {
    detail = `no recovery: ${error instanceof Error ? error.message : String(error)}`;
  }
  trace.emit({ kind: "check", seq: seq.n++, name: `old-or-new after cut ${cut}${second !== undefined ? `+${second}` : ""}`, ok, detail });
  trace.emit({ kind: "end", seq: seq.n++, ok, imageDigest: dev.imageDigest() });
  return trace;
}

/** A flash trace event; `index` is the chip's operation index (docs/trace-format.md). */
export function flashEvent(seq: number, index: number, op: NandOp): TraceEvent {
  const e = { kind: "flash" as const, seq, op: op.kind === "markBad" ? ("erase" as const) : op.kind, block: op.block, ...(op.kind === "program" || op.kind === "read" ? { page: op.page } : {}), index, ...(op.kind === "markBad" ? { markBad: true } : {}) };
  return e;
}

export function mergeCampaignResults(parts: readonly CampaignResult[]): CampaignResult {
  if (parts.length === 0) throw new RangeError("merge needs at least one shard result");
  const first = parts[0]!;
  for (const p of parts) {
    if (p.format !== CAMPAIGN_FORMAT) throw new RangeError(`not a campaign result (format ${JSON.stringify(p.format)})`);
    if (p.campaignId !== first.campaignId) throw new RangeError(`shards of different campaigns: ${first.campaignId} (${JSON.stringify(first.params)}) and ${p.campaignId} (${JSON.stringify(p.params)})`);
    if (p.shard.count !== first.shard.count) throw new RangeError(`shard counts differ: ${first.shard.count} and ${p.shard.count}`);
  }
  const n = first.shard.count;
  const seen = new Map<number, number>();
  for (const p of parts) seen.set(p.shard.index, (seen.get(p.shard.index) ?? 0) + 1);
  const doubled = [...seen].filter(([, c]) => c > 1).map(([i]) => `${i}/${n}`);
  if (doubled.length) throw new RangeError(`shard(s) given more than once: ${doubled.join(", ")}`);
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !seen.has(i)).map((i) => `${i}/${n}`);
  if (missing.length) throw new RangeError(`shard(s) missing: ${missing.join(", ")}`);
  const items = parts.flatMap((p) => p.items).sort((a, b) => a - b);
  if (items.length !== first.totalItems || items.some((v, i) => v !== i)) throw new RangeError(`shards do not cover the ${first.totalItems} items exactly once (got ${items.length})`);
  const perScenario: CampaignResult["perScenario"] = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.perScenario)) {
    const t = (perScenario[k] ??= { cutPoints: 0, failures: 0 });
    t.cutPoints += v.cutPoints;
    t.failures += v.failures;
  }
  return {
    format: CAMPAIGN_FORMAT, campaignId: first.campaignId, params: first.params, shard: WHOLE, totalItems: first.totalItems,
    cutPoints: parts.reduce((a, p) => a + p.cutPoints, 0), passed: parts.reduce((a, p) => a + p.passed, 0),
    failures: parts.flatMap((p) => p.failures).sort((a, b) => a.item - b.item), items, perScenario,
  };
}
