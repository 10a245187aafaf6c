/**
 * COS-level power-cut campaigns. A scenario is a list of steps, each one host command
 * (at most one commit). It runs once on a simulated Ukey; at every mutating flash
 * operation k the chip is forked and operation k torn on the fork (tearOperationOnFork);
 * a fresh COS is powered on over the fork and judged through APDUs only: its fingerprint
 * (ukey-ops.ts) must equal the one before the step or the one after it: old state or new,
 * nothing lost, no invoice number reused, no PIN try regained.
 *
 * With cuts = 2 each torn fork is cut again at every mutating operation of its recovery
 * (mount, repair, power-on, SELECT, GET DEVICE INFO, login) before being judged.
 *
 * Work items are (scenario, first cut[, second cut]) in a fixed order; `--shard i/n`
 * takes every n-th item. Results merge (mergeCampaignResults) when they are shards of the
 * same campaign, each present exactly once. campaign-pool.ts runs a campaign on worker threads.
 */
import { PinRef, issuer, call, verifyPin, selectApplication, decodeBatch, transceive, encodeCommand, CLA_ISO, CLA_PROPRIETARY, INS, TAX_AID, PIN_MAX_TRIES, type Send, type PurchaseRecord } from "../src/tax/index.ts";
import { Rng, MemoryTrace, toHex, type TraceEvent } from "../src/sim/index.ts";
import { tearOperationOnFork, DecryptCache, FlashStore, NandChip, bytesEqual, type ChipSnapshot, type NandOp } from "../src/flash-store/index.ts";
import { sm3 } from "../src/crypto/index.ts";
import { SimDevice, CAMPAIGN_GEOMETRY, HIL_START_SECONDS } from "./sim-device.ts";
import { simIssuerKeys, type IssuerKeys } from "./issuer-keys.ts";
import { personalize, login, draft, issue, issueApdu, voidApdu, exportApdu, changePinApdu, verifyApdu, fingerprint, oldOrNew, describeFingerprint, cardKeyOf, bureau, deviceInfo, type Fingerprint } from "./ukey-ops.ts";
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
  /** Uncut set-up on top of that (run once per seed; scenarios start from a fork of its result, logged in again). */
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
    steps: (): Step[] => [0, 1, 2].map((i) => ({ name: `issue-${i + 1}`, run: (c: StepContext) => call(c.send, issueApdu(draft(c.keys.profile, {}, 100 + i))) })),
  },
  {
    name: "void", description: "void an issued invoice",
    setup: (c) => issueN(c, 2), watch: (k) => [0, 1].map((i) => ({ code: code1(k), number: start1(k) + i })),
    steps: (): Step[] => [{ name: "void", run: (c) => call(c.send, voidApdu(code1(c.keys), start1(c.keys))) }],
  },
  {
    name: "red", description: "a red-letter invoice against an issued one",
    setup: (c) => issueN(c, 2, 1000), watch: (k) => [0, 1, 2].map((i) => ({ code: code1(k), number: start1(k) + i })),
    steps: (): Step[] => [{ name: "red", run: (c) => call(c.send, issueApdu(draft(c.keys.profile, { kind: 1, originalCode: code1(c.keys), originalNumber: start1(c.keys) }, 500))) }],
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
        { name: "export", run: (c) => call(c.send, exportApdu(0)) },
        { name: "confirm", prep: async (c) => { s = await bureau(c.send, c.cardKey); }, run: (c) => issuer.confirmUpload(c.send, s, 3) },
      ];
    },
  },
  {
    name: "rollover", description: "issue on a nearly full store whose old invoices were confirmed: rollover reclaims them",
    setup: async (c) => {
      // a big batch of stock, then issue and confirm in rounds until the store is nearly full of reclaimable invoices
      const first = c.keys.profile.purchases[0]!;
      await issuer.syncPurchases(c.send, await bureau(c.send, c.cardKey), [...c.keys.profile.purchases, { ...first, invoiceCode: "137001900555", startNumber: 1, count: 5000, nextNumber: 1 }].slice(0, 10));
      await login(c.send, c.keys.profile.userPin);
      for (let round = 0; round < ROLLOVER_MAX_ROUNDS; round++) {
        await issueN(c, 16);
        const batch = decodeBatch(await call(c.send, exportApdu(0)));
        await issuer.confirmUpload(c.send, await bureau(c.send, c.cardKey), batch.events[batch.events.length - 1]?.seq ?? 0);
        await login(c.send, c.keys.profile.userPin);
        if ((await deviceInfo(c.send)).storageFreeKiB <= ROLLOVER_FREE_KIB) break;
      }
    },
    steps: (): Step[] => [
      ...[0, 1, 2, 3].map((i) => ({ name: `issue-${i + 1}`, run: (c: StepContext) => call(c.send, issueApdu(draft(c.keys.profile, {}, 100))) })),
      {
        name: "rollover-happened", run: async (c: StepContext) => {
          const info = await deviceInfo(c.send);
          if (info.reclaimedRecords === 0) throw new Error(`rollover scenario: the store reclaimed nothing (free ${info.storageFreeKiB} KiB)`);
        },
      },
    ],
  },
];
/** Rounds of 16 confirmed invoices at most, and the free space at which filling stops. */
const ROLLOVER_MAX_ROUNDS = 80;
const ROLLOVER_FREE_KIB = 3;

export function scenarioByName(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new RangeError(`unknown scenario "${name}"; known: ${SCENARIOS.map((x) => x.name).join(", ")}`);
  return s;
}

export interface CampaignOptions {
  seed: number;
  /** Names of standard scenarios (default all). */
  scenarios?: readonly string[];
  /** Scenarios of your own instead (a vendor's flows, or tests of the judge). */
  customScenarios?: readonly Scenario[];
  mode?: CampaignMode;
  cuts?: 1 | 2;
  shard?: Shard;
  /** Random mode: how many work items to draw (default 200). */
  samples?: number;
  /** Only these (scenario, cut[, second]) items (replay of one failure). */
  only?: { scenario: string; cut: number; second?: number };
  /** Record a trace of each failure (default true). */
  traces?: boolean;
  /** Judge every point through APDUs (no record-set fast path). */
  fullJudge?: boolean;
  /** List every judged point (scenario, step, cut, second, verdict) in the result. */
  listPoints?: boolean;
  /** Monotonic clock (ms) for the phase timings of the bench; results stay free of timings without it. */
  now?: () => number;
  /** Receives the time spent running scenarios and judging points (when `now` is given). */
  onTimings?: (t: { scenariosMs: number; judgeMs: number }) => void;
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
  /** Points decided by the record-set fast path (the rest went through the APDU judge). */
  fastVerdicts: number;
  /** Every judged point, when asked for (listPoints). */
  points?: PointResult[];
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

/** The devices every scenario forks from: a blank card and a personalized one (made once per seed). */
interface Bases {
  blank: SimDevice;
  personalized: SimDevice;
  cardKey: Uint8Array;
}
const basesMemo = new Map<number, Promise<Bases>>();
/** Salt of the COS rng of the scenario's fork (same in campaigns and in cutTrace). */
const SCENARIO_SALT = 11;
const JUDGE_SALT = 7;

function bases(seed: number, keys: IssuerKeys): Promise<Bases> {
  let b = basesMemo.get(seed);
  if (!b) {
    b = (async () => {
      const cache = new DecryptCache();
      const blank = SimDevice.create({ seed, geometry: CAMPAIGN_GEOMETRY, cache });
      blank.powerOn();
      const send = sendOf(blank);
      await selectApplication(send);
      const cardKey = await cardKeyOf(send, keys);
      const personalized = blank.fork(3);
      personalized.powerOn();
      await personalize(sendOf(personalized), keys, HIL_START_SECONDS);
      return { blank, personalized, cardKey };
    })();
    if (basesMemo.size > 8) basesMemo.clear();
    basesMemo.set(seed, b);
  }
  return b;
}

/** The device after a scenario's set-up (made once per seed and scenario, then forked). */
const setupMemo = new Map<string, Promise<SimDevice>>();

/**
 * A fresh fork of the scenario's starting point: the blank or personalized base, with the
 * scenario's (uncut) set-up already run; powered on and logged in (startScenario).
 */
async function scenarioDevice(seed: number, keys: IssuerKeys, sc: Scenario): Promise<{ dev: SimDevice; cardKey: Uint8Array; from: SimDevice }> {
  const b = await bases(seed, keys);
  const base = sc.blank ? b.blank : b.personalized;
  let start: Promise<SimDevice> | undefined;
  if (sc.setup) {
    const memoKey = `${seed}/${sc.name}`;
    start = setupMemo.get(memoKey);
    if (!start) {
      start = (async () => {
        const d = base.fork(SCENARIO_SALT + 1);
        d.powerOn();
        const c: StepContext = { send: sendOf(d), keys, cardKey: b.cardKey };
        await startScenario(sc, c);
        await sc.setup!(c);
        return d;
      })();
      if (setupMemo.size > 32) setupMemo.clear();
      setupMemo.set(memoKey, start);
    }
  }
  const from = start ? await start : base;
  const dev = from.fork(SCENARIO_SALT);
  dev.powerOn();
  await startScenario(sc, { send: sendOf(dev), keys, cardKey: b.cardKey });
  return { dev, cardKey: b.cardKey, from };
}

/** A personalized scenario starts logged in (SELECT + VERIFY), a blank one selected. */
async function startScenario(sc: Scenario, c: StepContext): Promise<void> {
  if (sc.blank) await selectApplication(c.send);
  else await login(c.send, c.keys.profile.userPin);
}

async function judge(base: SimDevice, chip: NandChip, pins: string[], watch: { code: string; number: number }[], trace?: MemoryTrace, seq?: { n: number }): Promise<Fingerprint> {
  const dev = base.onChip(chip, JUDGE_SALT);
  dev.powerOn();
  return fingerprint(sendOf(dev, trace, seq), pins, watch);
}

/**
 * Every record of a store (values by reference) and its rollover count, with the read-only
 * store they were read from (sameValue compares a torn fork's record with it first).
 */
interface RecordSet {
  store: FlashStore;
  entries: { type: number; id: number; value: Uint8Array; reclaimable: boolean }[];
  reclaimed: number;
}

/**
 * The record set of a read-only store. A record that is the same bytes on flash as in `donor`
 * (readsSameAs: get() returns an equal value, and does not throw, as it did there) takes the
 * donor's value instead of being read again: a step changes a few records of hundreds.
 */
function recordSet(store: FlashStore, donor?: RecordSet): RecordSet {
  const stats = store.stats();
  const entries: RecordSet["entries"] = [];
  const known = donor ? new EntryCursor(donor.entries) : undefined;
  for (const t of Object.keys(stats.recordsByType).map(Number).sort((x, y) => x - y)) {
    for (const id of store.ids(t)) {
      const value = donor && store.readsSameAs(donor.store, t, id) ? known!.seek(t, id)!.value : store.get(t, id)!;
      entries.push({ type: t, id, value, reclaimable: store.isReclaimable(t, id) });
    }
  }
  return { store, entries, reclaimed: stats.reclaimedRecords };
}

/** (type, id) as one number, ordered as (type, id): types are 8-bit and ids 32-bit (RECORD_TYPE_MAX, RECORD_ID_MAX). */
const entryKey = (type: number, id: number): number => type * 0x1_0000_0000 + id;

/**
 * Finds entries of a record set by a forward walk: record sets list their entries in
 * ascending (type, id) (recordSet), so seeks in ascending order cost O(entries) in all.
 */
class EntryCursor {
  private at = 0;
  constructor(private readonly entries: RecordSet["entries"]) {}

  /** The entry (type, id), or undefined; (type, id) must not be below the previous seek's. */
  seek(type: number, id: number): RecordSet["entries"][number] | undefined {
    const key = entryKey(type, id);
    const n = this.entries.length;
    while (this.at < n && entryKey(this.entries[this.at]!.type, this.entries[this.at]!.id) < key) this.at++;
    const e = this.entries[this.at];
    return e && e.type === type && e.id === id ? e : undefined;
  }
}

/**
 * Does `store` hold the entry's value? Exactly `store.get(...)` compared with it (same answer,
 * same throws), but without reading when readsSameAs shows the record is the same bytes on
 * flash as in the store the entry was read from.
 */
function sameValue(store: FlashStore, from: FlashStore, e: RecordSet["entries"][number]): boolean {
  if (store.readsSameAs(from, e.type, e.id)) return true;
  const v = store.get(e.type, e.id);
  return v !== undefined && bytesEqual(v, e.value);
}

/** The entries of `a` that `b` lacks or holds differently: what a step changed (checked first). */
function changedEntries(a: RecordSet, b: RecordSet): RecordSet["entries"] {
  const index = new EntryCursor(b.entries);
  return a.entries.filter((e) => {
    const o = index.seek(e.type, e.id);
    return !o || o.reclaimable !== e.reclaimable || (o.value !== e.value && !bytesEqual(o.value, e.value));
  });
}

/** Each entry (read from `set`'s store) has its value and reclaimable flag in `store`. */
function sameEntries(store: FlashStore, set: RecordSet, entries: RecordSet["entries"]): boolean {
  for (const e of entries) {
    if (!sameValue(store, set.store, e) || store.isReclaimable(e.type, e.id) !== e.reclaimable) return false;
  }
  return true;
}

/** `store` holds exactly `set`: the same records (values, reclaimable flags) and rollover count. */
function sameRecords(store: FlashStore, set: RecordSet): boolean {
  const stats = store.stats();
  if (stats.records !== set.entries.length || stats.reclaimedRecords !== set.reclaimed) return false;
  return sameEntries(store, set, set.entries);
}

/** APDU-judged record sets a run remembers at most (each costs a scan per later judged point). */
const MAX_JUDGED_SETS = 8;

interface ScenarioRun {
  /**
   * The chip right before each step's command (after its prep) and right after it; their
   * APDU fingerprints are taken lazily (printOf): most points never need them.
   */
  beforeChips: NandChip[];
  afterChips: NandChip[];
  prints: Map<string, Promise<Fingerprint>>;
  /** Per step: the entries only the old side has (or holds differently), and the new side's. */
  changed: ({ old: RecordSet["entries"]; new: RecordSet["entries"] } | undefined)[];
  pins: string[];
  watch: { code: string; number: number }[];
  /** The same as record sets (the fast path of the judge), read when first needed (setOf). */
  sets: Map<NandChip, RecordSet>;
  /** The set read last (the next one takes the values of its unchanged records). */
  lastSet?: RecordSet;
  /** Record sets of APDU-judged torn stores, with their fingerprints (judgedPrint). */
  judged: { set: RecordSet; print: Fingerprint }[];
  cuts: RecordedCut[];
  seed: number;
  /** The scenario's name. */
  name: string;
  device: SimDevice;
  /** The (memoized) device the scenario's device was forked from: base or set-up (startSet). */
  from: SimDevice;
  opSteps: Map<number, { step: number; name: string; op: NandOp }>;
}

/** Runs one scenario, recording a torn fork at every mutating operation of its steps. */
async function runScenario(sc: Scenario, seed: number, keys: IssuerKeys, record = true): Promise<ScenarioRun> {
  const { dev, cardKey, from } = await scenarioDevice(seed, keys, sc);
  const ctx: StepContext = { send: sendOf(dev), keys, cardKey };
  const opSteps = new Map<number, { step: number; name: string; op: NandOp }>();
  const pins = sc.pins?.(keys) ?? [keys.profile.userPin];
  const watch = sc.watch?.(keys) ?? [];
  const steps = sc.steps(ctx);
  const beforeChips: NandChip[] = [];
  const afterChips: NandChip[] = [];
  const cuts: RecordedCut[] = [];
  let afterSnap: ChipSnapshot | undefined;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.prep) await step.prep(ctx);
    // boundaries are forks (reads on the running chip would shift its op indices); when the
    // prep wrote nothing, the chip is still the previous step's "after": the same boundary
    beforeChips.push(afterSnap && dev.chip.unchangedSince(afterSnap) ? afterChips[i - 1]! : dev.chip.fork());
    dev.chip.setObserver((k, op) => {
      if (op.kind === "read") return;
      opSteps.set(k, { step: i, name: step.name, op });
      if (record) cuts.push({ scenario: sc.name, step: i, stepName: step.name, cut: k, op, torn: tearOperationOnFork(dev.chip, op, new Rng(seed, k)) });
    });
    try {
      await step.run(ctx);
    } finally {
      dev.chip.setObserver(null);
    }
    afterSnap = dev.chip.snapshot();
    afterChips.push(NandChip.fromSnapshot(afterSnap));
  }
  return { beforeChips, afterChips, prints: new Map(), changed: [], pins, watch, sets: new Map(), judged: [], cuts, seed, name: sc.name, device: dev, from, opSteps };
}

/**
 * The record set of a step boundary, read once (on a read-only mount of a fork of the
 * boundary chip) when a point of the step first needs it: steps without cut points (or
 * without points in this shard) never pay for it.
 */
function setOf(run: ScenarioRun, side: "before" | "after", step: number): RecordSet {
  const chip = (side === "before" ? run.beforeChips : run.afterChips)[step]!;
  let set = run.sets.get(chip);
  if (!set) {
    set = recordSet(FlashStore.mount(chip.fork(), { key: run.device.storeKey, cache: run.device.decryptCache, readOnly: true }), run.lastSet ?? startSet(run.from));
    run.sets.set(chip, set);
    run.lastSet = set;
  }
  return set;
}

/**
 * The record set of a memoized start device (a base or a set-up), read once on a fork of its
 * chip and kept while the device is: a run's first boundary shares most pages with it, so it
 * takes the unchanged values from here (recordSet's donor) instead of reading every record.
 * The start device's chip is only ever forked, never written, after it is memoized.
 */
function startSet(from: SimDevice): RecordSet | undefined {
  let set = startSets.get(from);
  if (!set) {
    try {
      set = recordSet(FlashStore.mount(from.chip.fork(), { key: from.storeKey, cache: from.decryptCache, readOnly: true }));
    } catch {
      return undefined; // no donor: the boundary reads its records itself (and reports what fails)
    }
    startSets.set(from, set);
  }
  return set;
}
const startSets = new WeakMap<SimDevice, RecordSet>();

/** The APDU fingerprint of a step boundary, taken once on a fork of the boundary chip. */
function printOf(run: ScenarioRun, side: "before" | "after", step: number): Promise<Fingerprint> {
  // a step's "before" that is the previous step's "after" (same chip) has the same print
  if (side === "before" && step > 0 && run.beforeChips[step] === run.afterChips[step - 1]) return printOf(run, "after", step - 1);
  const key = `${side}${step}`;
  let p = run.prints.get(key);
  if (!p) {
    const chip = (side === "before" ? run.beforeChips : run.afterChips)[step]!;
    const memoKey = `${run.seed}/${run.name}/${key}`;
    const inputs: JudgeInputs = { chip, clockMs: run.device.clock.now(), serial: run.device.serial, storeKey: run.device.storeKey, pins: run.pins, watch: run.watch };
    const hit = printMemo.get(memoKey);
    if (hit && sameJudgeInputs(hit.inputs, inputs)) p = Promise.resolve(hit.print);
    else {
      p = judge(run.device, chip.fork(), run.pins, run.watch).then((print) => {
        if (printMemo.size >= MAX_MEMO_PRINTS) printMemo.clear();
        printMemo.set(memoKey, { inputs, print });
        return print;
      });
    }
    run.prints.set(key, p);
  }
  return p;
}

/** What the APDU judge of a boundary is a function of (besides the seed and the judge's rng salt, fixed by the memo key). */
interface JudgeInputs {
  chip: NandChip;
  clockMs: number;
  serial: string;
  storeKey: Uint8Array;
  pins: readonly string[];
  watch: readonly { code: string; number: number }[];
}

/**
 * Boundary fingerprints kept across campaigns (the same seed runs the same scenario to the
 * same boundaries each time), by seed/scenario/side+step, with the inputs they were taken
 * from. printOf reuses one only when every input is equal: the chip's cells compared in full
 * (sameCells), clock, serial, key, PINs and watch list. The judge (a fresh COS over a fork of
 * the chip, fingerprinted through APDUs) is deterministic in these, so the reused print is the
 * one it would take again. Custom scenarios sharing a standard name just miss.
 */
const printMemo = new Map<string, { inputs: JudgeInputs; print: Fingerprint }>();
const MAX_MEMO_PRINTS = 256;

function sameJudgeInputs(a: JudgeInputs, b: JudgeInputs): boolean {
  return a.clockMs === b.clockMs && a.serial === b.serial && bytesEqual(a.storeKey, b.storeKey) &&
    a.pins.length === b.pins.length && a.pins.every((pin, i) => pin === b.pins[i]) &&
    a.watch.length === b.watch.length && a.watch.every((w, i) => w.code === b.watch[i]!.code && w.number === b.watch[i]!.number) &&
    sameCells(a.chip, b.chip);
}

const ERASED_PAGE = new Uint8Array(0);

/**
 * Do two chips hold the same cells: geometry, endurance, secure area, and per block the erase
 * count, program pointer, flags and every page's bytes (pages as the media stores them,
 * trimmed of trailing 0xFF: null and empty both read erased), with no read fault configured?
 * O(pages); shared (copy-on-write) pages compare by identity.
 */
export function sameCells(a: NandChip, b: NandChip): boolean {
  const g = a.geometry;
  const h = b.geometry;
  if (g.pageBytes !== h.pageBytes || g.spareBytes !== h.spareBytes || g.pagesPerBlock !== h.pagesPerBlock || g.blocks !== h.blocks) return false;
  if (a.endurance !== b.endurance || !a.readsExact || !b.readsExact || !bytesEqual(a.readSecureArea(), b.readSecureArea())) return false;
  for (let block = 0; block < g.blocks; block++) {
    if (a.media.eraseCount(block) !== b.media.eraseCount(block) || a.media.writePointer(block) !== b.media.writePointer(block) || a.media.blockFlags(block) !== b.media.blockFlags(block)) return false;
    for (let page = 0; page < g.pagesPerBlock; page++) {
      const x = a.media.readPage(block, page);
      const y = b.media.readPage(block, page);
      if (x !== y && !bytesEqual(x ?? ERASED_PAGE, y ?? ERASED_PAGE)) return false;
    }
  }
  return true;
}

/**
 * The verdict on a torn chip. Fast path: mount read-only and compare the record set with
 * the one before and after the step; the COS's answers are a function of its records (and
 * the secure area and clock, which a cut does not touch), so an equal record set answers
 * exactly like the boundary device the APDU judge already fingerprinted. Otherwise (or
 * with fullJudge) a fresh COS is powered on over the chip and fingerprinted through APDUs.
 */
async function verdictOf(run: ScenarioRun, step: number, chip: NandChip, pins: string[], watch: { code: string; number: number }[], fullJudge: boolean, twoCuts: boolean): Promise<{ verdict: "old" | "new" | null; print?: Fingerprint }> {
  let store: FlashStore | undefined;
  if (!fullJudge) {
    try {
      // on a fork: the APDU judge below writes `chip` (repair, login), and this store must see it unchanged (readsSameAs)
      store = FlashStore.mount(chip.fork(), { key: run.device.storeKey, cache: run.device.decryptCache, readOnly: true });
    } catch {
      store = undefined; // the full judge reports what happens on power-on
    }
    if (store) {
      // the records the step changed tell which side to check in full (one scan, not two)
      const before = setOf(run, "before", step);
      const after = setOf(run, "after", step);
      let changed = run.changed[step];
      if (!changed) changed = run.changed[step] = { old: changedEntries(before, after), new: changedEntries(after, before) };
      if (sameEntries(store, before, changed.old) && sameRecords(store, before)) return { verdict: "old" };
      if (sameEntries(store, after, changed.new) && sameRecords(store, after)) return { verdict: "new" };
    }
  }
  const print = (store && judgedPrint(run, store)) ?? (await judgeAndRemember(run, chip, store, pins, watch));
  const [before, after] = [await printOf(run, "before", step), await printOf(run, "after", step)];
  return { verdict: twoCuts ? oldOrNew(print, before, after, 2, PIN_MAX_TRIES) : oldOrNew(print, before, after), print };
}

/**
 * The fingerprint of an earlier APDU-judged point of the run whose torn store holds exactly
 * the same record set as `store`, if any. Sound on the fast path's own ground: the COS's
 * answers are a function of its records (the secure area, clock, PINs and watched invoices
 * being the same within a run), so two stores with one record set fingerprint alike. (A PIN
 * check's decrement, cut before its restore, leaves one such set at several cut points.)
 * A read that throws here is no match: the point is then judged through APDUs as before.
 */
function judgedPrint(run: ScenarioRun, store: FlashStore): Fingerprint | undefined {
  for (const j of run.judged) {
    try {
      if (sameRecords(store, j.set)) return j.print;
    } catch {
      // an unreadable record: not shown equal
    }
  }
  return undefined;
}

/** The APDU judge's fingerprint of `chip`, remembered with the record set of its read-only `store` (judgedPrint). */
async function judgeAndRemember(run: ScenarioRun, chip: NandChip, store: FlashStore | undefined, pins: string[], watch: { code: string; number: number }[]): Promise<Fingerprint> {
  const print = await judge(run.device, chip, pins, watch);
  if (store && run.judged.length < MAX_JUDGED_SETS) {
    try {
      run.judged.push({ set: recordSet(store, run.lastSet), print });
    } catch {
      // an unreadable record: nothing to remember
    }
  }
  return print;
}

/**
 * The recovery of a torn chip as a host does it: mount (with repair), COS power-on,
 * SELECT, GET DEVICE INFO and the login (VERIFY with the PIN it knows). A second cut goes
 * at each mutating operation of this; the judge then allows the login's effect on the
 * tries (restored to the maximum, or one more lost).
 */
async function recover(base: SimDevice, chip: NandChip, pin: string): Promise<void> {
  const dev = base.onChip(chip, JUDGE_SALT);
  dev.powerOn();
  const send = sendOf(dev);
  await transceive(send, encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 4, p2: 0, data: TAX_AID }));
  await transceive(send, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GET_DEVICE_INFO, le: 256 }));
  await transceive(send, verifyApdu(pin));
}

/** Mutating operations of the recovery of a torn chip, each torn on its own fork. */
async function recoveryOps(base: SimDevice, torn: NandChip, pin: string): Promise<{ k: number; op: NandOp; torn2: NandChip }[]> {
  const chip = torn.fork();
  const out: { k: number; op: NandOp; torn2: NandChip }[] = [];
  chip.setObserver((k, op) => {
    if (op.kind !== "read") out.push({ k, op, torn2: tearOperationOnFork(chip, op, new Rng(base.seed, 0x5eed ^ k)) });
  });
  try {
    await recover(base, chip, pin);
  } finally {
    chip.setObserver(null);
  }
  return out;
}

interface WorkItem {
  scenario: number;
  cut: RecordedCut;
  second?: number;
  chip: NandChip;
}

/** Runs a power-cut campaign (or the shard / the single item of it that the options select). */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const mode = options.mode ?? "exhaustive";
  const cuts = options.cuts ?? 1;
  const shard = options.shard ?? WHOLE;
  const scenarios = options.customScenarios?.length ? [...options.customScenarios] : options.scenarios?.length ? options.scenarios.map(scenarioByName) : [...SCENARIOS];
  const names = scenarios.map((s) => s.name);
  const params: CampaignResult["params"] = { seed: options.seed, mode, cuts, scenarios: names, ...(mode === "random" ? { samples: options.samples ?? 200 } : {}) };
  const keys = simIssuerKeys();
  const traces = options.traces !== false;
  const result: CampaignResult = {
    format: CAMPAIGN_FORMAT, campaignId: campaignId(params), params, shard, totalItems: 0, cutPoints: 0, passed: 0, failures: [], items: [], perScenario: {}, fastVerdicts: 0,
  };

  // Run every scenario once, recording a torn fork at each mutating operation (cheap: copy-on-write).
  const t0 = options.now?.() ?? 0;
  const runs: ScenarioRun[] = [];
  for (const sc of scenarios) runs.push(await runScenario(sc, options.seed, keys, !options.only || options.only.scenario === sc.name));
  const firsts = runs.flatMap((run, si) => run.cuts.map((cut) => ({ si, cut })));
  // Random mode draws first cuts; with cuts 2 every second cut under a drawn first cut is taken.
  let chosen: Set<number> | undefined;
  if (mode === "random") {
    const rng = new Rng(options.seed).fork("campaign-random");
    chosen = new Set<number>();
    const want = Math.min(params.samples ?? 200, firsts.length);
    while (chosen.size < want) chosen.add(rng.int(firsts.length));
  }
  const work: WorkItem[] = [];
  for (let i = 0; i < firsts.length; i++) {
    if (chosen && !chosen.has(i)) continue;
    const { si, cut } = firsts[i]!;
    if (options.only && (options.only.scenario !== scenarios[si]!.name || options.only.cut !== cut.cut)) continue;
    if (cuts === 1) work.push({ scenario: si, cut, chip: cut.torn });
    else {
      const sc = scenarios[si]!;
      for (const r of await recoveryOps(runs[si]!.device, cut.torn, (sc.pins?.(keys) ?? [keys.profile.userPin])[0]!)) {
        if (options.only?.second !== undefined && options.only.second !== r.k) continue;
        work.push({ scenario: si, cut, second: r.k, chip: r.torn2 });
      }
    }
  }
  result.totalItems = work.length;
  for (const sc of scenarios) result.perScenario[sc.name] = { cutPoints: 0, failures: 0 };
  const mine = work.map((w, index) => ({ w, index })).filter(({ index }) => options.only !== undefined || inShard(index, shard));
  let done = 0;
  const t1 = options.now?.() ?? 0;
  for (const { w, index } of mine) {
    const sc = scenarios[w.scenario]!;
    const run = runs[w.scenario]!;
    const per = result.perScenario[sc.name]!;
    const c = w.cut;
    const pins = sc.pins?.(keys) ?? [keys.profile.userPin];
    const watch = sc.watch?.(keys) ?? [];
    result.items.push(index);
    result.cutPoints++;
    per.cutPoints++;
    let reason: string | undefined;
    try {
      const v = await verdictOf(run, c.step, w.chip, pins, watch, options.fullJudge === true, w.second !== undefined);
      if (!v.print) result.fastVerdicts++;
      if (options.listPoints) (result.points ??= []).push({ item: index, scenario: sc.name, step: c.stepName, cut: c.cut, ...(w.second !== undefined ? { second: w.second } : {}), ok: v.verdict !== null });
      if (!v.verdict) {
        reason = `after a cut at op ${c.cut} (${c.op.kind} block ${c.op.block})${w.second !== undefined ? ` and one at op ${w.second} of its recovery` : ""} in step "${c.stepName}" the card shows neither the state before the step nor the one after:\n  got    ${v.print ? describeFingerprint(v.print) : "?"}\n  before ${describeFingerprint(await printOf(run, "before", c.step))}\n  after  ${describeFingerprint(await printOf(run, "after", c.step))}`;
      }
    } catch (error) {
      reason = `after a cut at op ${c.cut} in step "${c.stepName}" the card does not recover: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (reason) {
      per.failures++;
      const failure: CampaignFailure = {
        item: index, scenario: sc.name, step: c.stepName, cut: c.cut, ...(w.second !== undefined ? { second: w.second } : {}), ok: false, reason,
        replay: replayCommand(options.seed, sc.name, c.cut, w.second, cuts),
      };
      if (traces) failure.trace = (await cutTrace(options.seed, sc, c.cut, w.second, cuts)).toJsonLines();
      result.failures.push(failure);
    } else result.passed++;
    options.onProgress?.(++done, mine.length);
  }
  if (options.now) options.onTimings?.({ scenariosMs: t1 - t0, judgeMs: options.now() - t1 });
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
  const reference = await runScenario(sc, seed, keys, false);
  const trace = new MemoryTrace();
  const seq = { n: 0 };
  trace.emit({ kind: "run", seed, tool: CAMPAIGN_TOOL, params: { scenario: sc.name, cut, cuts, ...(second !== undefined ? { second } : {}), base: `${sc.blank ? "blank" : "personalized"}${sc.setup ? "+setup" : ""}`, geometry: CAMPAIGN_GEOMETRY } });
  const where = reference.opSteps.get(cut);
  if (!where) {
    trace.emit({ kind: "check", seq: seq.n++, name: "cut point exists", ok: false, detail: `scenario ${sc.name} has no mutating flash operation ${cut}` });
    trace.emit({ kind: "end", seq: seq.n++, ok: false });
    return trace;
  }
  const pins = sc.pins?.(keys) ?? [keys.profile.userPin];
  const watch = sc.watch?.(keys) ?? [];
  const { dev, cardKey } = await scenarioDevice(seed, keys, sc);
  const ctx: StepContext = { send: sendOf(dev, trace, seq), keys, cardKey };
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
      await recover(dev, dev.chip, pins[0]!);
    } catch (error) {
      if (!dev.chip.poweredOff) throw error;
    }
    dev.chip.setObserver(null);
    trace.emit({ kind: "fault", seq: seq.n++, fault: "power-cut-in-recovery", detail: { op: second } });
    dev.chip.disarmPowerCut();
    dev.chip.repower();
  }
  const accept = [await printOf(reference, "before", where.step), await printOf(reference, "after", where.step)];
  let ok = false;
  let detail: string;
  try {
    const print = await judge(dev, dev.chip, pins, watch, trace, seq);
    const verdict = second !== undefined ? oldOrNew(print, accept[0]!, accept[1]!, 2, PIN_MAX_TRIES) : oldOrNew(print, accept[0]!, accept[1]!);
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
  return {
    kind: "flash", seq, op: op.kind === "markBad" ? "erase" : op.kind, block: op.block,
    ...(op.kind === "program" || op.kind === "read" ? { page: op.page } : {}), index, ...(op.kind === "markBad" ? { markBad: true as const } : {}),
  };
}

export function mergeCampaignResults(parts: readonly CampaignResult[]): CampaignResult {
  if (parts.length === 0) throw new RangeError("merge needs at least one shard result");
  const first = parts[0]!;
  for (const p of parts) {
    if (p.format !== CAMPAIGN_FORMAT) throw new RangeError(`not a campaign result (format ${JSON.stringify(p.format)})`);
    const shape = (ok: boolean, what: string) => {
      if (!ok) throw new RangeError(`malformed campaign result: ${what}`);
    };
    shape(typeof p.campaignId === "string", "campaignId must be a string");
    shape(typeof p.shard === "object" && p.shard !== null && Number.isInteger(p.shard.index) && Number.isInteger(p.shard.count) && p.shard.index >= 1 && p.shard.index <= p.shard.count, "shard must be {index, count} with 1 <= index <= count");
    shape(Number.isInteger(p.totalItems) && Number.isInteger(p.cutPoints) && Number.isInteger(p.passed), "totalItems, cutPoints and passed must be integers");
    shape(Array.isArray(p.items) && p.items.every((i) => Number.isInteger(i)), "items must be a list of integers");
    shape(Array.isArray(p.failures) && typeof p.perScenario === "object" && p.perScenario !== null, "failures must be a list and perScenario an object");
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
    failures: parts.flatMap((p) => p.failures).sort((a, b) => a.item - b.item), items, perScenario, fastVerdicts: parts.reduce((a, p) => a + (p.fastVerdicts ?? 0), 0),
  };
}
