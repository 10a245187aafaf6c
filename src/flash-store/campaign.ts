/**
 * Power-cut campaigns (littlefs style): run a scenario once on a chip and, at every
 * mutating flash operation k, fork the chip, tear operation k on the fork, remount the store
 * on it and check that it equals the model either before or after the transaction that was
 * being committed. The printed replay id is `seed=S scenario=NAME cut=K` (K = op index).
 */
import { Rng } from "../sim/index.ts";
import { StoreError, type RecordStore, type StoreStats, type TxOp } from "./api.ts";
import type { Geometry } from "./geometry.ts";
import { ModelStore } from "./model.ts";
import { NandChip, tearOperationOnFork, type NandOp } from "./nand.ts";
import { DecryptCache, FlashStore } from "./store.ts";

export interface CutScenario {
  name: string;
  /** Transactions committed before the campaign starts (not cut). */
  setup: readonly (readonly TxOp[])[];
  /** Transactions during which every mutating operation is cut once. */
  transactions: readonly (readonly TxOp[])[];
}

export interface CutFailure {
  cut: number;
  tx: number;
  replay: string;
  reason: string;
}

export interface CampaignOptions {
  geometry: Geometry;
  key: Uint8Array;
  seed: number;
  /** After remounting a torn fork, also commit one more transaction and check it survives a remount. */
  resume?: boolean;
  /** Only cut operations with these indices (replay); default every mutating operation. */
  only?: ReadonlySet<number>;
  /** Stop after this many cut points (time budget). */
  maxCuts?: number;
  /** Shard i of n: only cut operations whose index k has k % n === i (results of all shards add up). */
  shard?: { index: number; count: number };
}

export interface CampaignResult {
  cutPoints: number;
  failures: CutFailure[];
  /** Operations the scenario ran in total (reads included). */
  operations: number;
}

/** Every (type, id) a list of transactions touches. */
export function keysOf(txs: readonly (readonly TxOp[])[]): { type: number; id: number }[] {
  const seen = new Map<string, { type: number; id: number }>();
  for (const tx of txs) for (const op of tx) seen.set(`${op.type}/${op.id}`, { type: op.type, id: op.id });
  return [...seen.values()];
}

/** Null when `store` shows exactly what `model` holds for `keys` (values, marks, record count); else what differs. */
export function diffStores(store: RecordStore, model: ModelStore, keys: readonly { type: number; id: number }[], storeStats = store.stats()): string | null {
  return diffReading(new StoreReading(store, keys, storeStats), model);
}

/**
 * What a store shows for a list of keys, each read at most once and only when a compare
 * needs it: a cut point compares one mounted store with two models (before, after), and
 * reading a record (CRC, decrypt, copy) costs more than comparing it.
 */
class StoreReading {
  private readonly values: (Uint8Array | undefined)[] = [];
  private readonly read: boolean[] = [];

  constructor(readonly store: RecordStore, readonly keys: readonly { type: number; id: number }[], readonly stats: StoreStats) {}

  value(i: number): Uint8Array | undefined {
    if (!this.read[i]) {
      const { type, id } = this.keys[i] as { type: number; id: number };
      this.values[i] = this.store.get(type, id);
      this.read[i] = true;
    }
    return this.values[i];
  }
}

function diffReading(reading: StoreReading, model: ModelStore): string | null {
  // Counts first: cheap, and most "not this model" cases differ there.
  const sb = model.stats();
  const storeStats = reading.stats;
  if (storeStats.records !== sb.records) return `record count ${storeStats.records} != model ${sb.records}`;
  if (storeStats.reclaimedRecords !== sb.reclaimedRecords) return `reclaimed count ${storeStats.reclaimedRecords} != model ${sb.reclaimedRecords}`;
  const keys = reading.keys;
  for (let i = 0; i < keys.length; i++) {
    const { type, id } = keys[i] as { type: number; id: number };
    const a = reading.value(i);
    const b = model.get(type, id);
    if ((a === undefined) !== (b === undefined)) return `${type}/${id}: ${a === undefined ? "missing" : "present"} but model says ${b === undefined ? "missing" : "present"}`;
    if (a && b && !bytesEqual(a, b)) return `${type}/${id}: value differs`;
    if (reading.store.isReclaimable(type, id) !== model.isReclaimable(type, id)) return `${type}/${id}: reclaimable flag differs`;
  }
  return null;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface RandomScenarioOptions {
  /** Transactions in the scenario. */
  txs: number;
  /** Distinct ids per type (small: ops collide). Default 10. */
  keys?: number;
  /** Largest ordinary record. Default 300. */
  maxBytes?: number;
  /** Chance that a put is a large (multi-page) record. Default 0.05. */
  bigChance?: number;
}

/** Record types a random scenario uses: one critical, two ordinary. */
export const SCENARIO_TYPES = [0x10, 0x50, 0x51] as const;

/**
 * A reproducible random scenario: the same seed and options always give the same
 * transactions, so `replay: seed=S scenario=NAME cut=K` can be rerun anywhere.
 */
export function randomScenario(seed: number, options: RandomScenarioOptions): CutScenario {
  const rng = new Rng(seed, 0x5ce4);
  const keys = options.keys ?? 10;
  const maxBytes = options.maxBytes ?? 300;
  const bigChance = options.bigChance ?? 0.05;
  const transactions: TxOp[][] = [];
  for (let t = 0; t < options.txs; t++) {
    const ops: TxOp[] = [];
    const n = rng.range(1, 4);
    for (let j = 0; j < n; j++) {
      const type = rng.pick(SCENARIO_TYPES);
      const id = rng.int(keys);
      const r = rng.int(10);
      if (r < 6) ops.push({ kind: "put", type, id, value: rng.bytes(rng.float() < bigChance ? rng.range(600, 4096) : rng.int(maxBytes + 1)) });
      else if (r < 8) ops.push({ kind: "delete", type, id });
      else ops.push({ kind: "reclaimable", type, id });
    }
    transactions.push(ops);
  }
  return { name: `random-t${options.txs}-k${keys}-b${maxBytes}-p${bigChance}`, setup: [], transactions };
}

/** The data key a campaign with this seed uses (tests and `ukeysim flash-campaign` agree on it). */
export function campaignKey(seed: number): Uint8Array {
  return new Rng(seed, 0x6b).bytes(16);
}

export function replayId(seed: number, scenario: string, cut: number): string {
  return `replay: seed=${seed} scenario=${scenario} cut=${cut}`;
}

/** Runs the exhaustive single-cut campaign of one scenario. */
export function runCutCampaign(scenario: CutScenario, options: CampaignOptions): CampaignResult {
  if (options.shard) {
    const { index, count } = options.shard;
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`shard must be i/n with 0 <= i < n, got ${index}/${count}`);
  }
  const chip = NandChip.memory({ geometry: options.geometry });
  const cache = new DecryptCache();
  const store = FlashStore.format(chip, { key: options.key, cache });
  let model = new ModelStore();
  for (const tx of scenario.setup) {
    store.commit(tx);
    model.commit(tx);
  }
  const keys = keysOf([...scenario.setup, ...scenario.transactions]);
  const rng = new Rng(options.seed);
  const failures: CutFailure[] = [];
  let cutPoints = 0;
  let txIndex = 0;
  // The models either side of the transaction being committed. Models are never modified
  // once they stand for a committed state (each transaction makes new ones), so `before` may
  // be the running model itself and the check can share them without copies.
  let before = model;
  let after = model;
  const maxCuts = options.maxCuts ?? Number.POSITIVE_INFINITY;
  const check = (k: number, op: NandOp) => {
    if (op.kind === "read" || cutPoints >= maxCuts) return;
    if (options.only && !options.only.has(k)) return;
    if (options.shard && k % options.shard.count !== options.shard.index) return;
    cutPoints++;
    const torn = tearOperationOnFork(chip, op, new Rng(options.seed, k));
    const reason = checkTorn(torn, options, cache, before, after, keys, rng);
    if (reason) failures.push({ cut: k, tx: txIndex, replay: replayId(options.seed, scenario.name, k), reason });
  };
  chip.setObserver(check);
  for (const tx of scenario.transactions) {
    before = model;
    after = model.clone();
    after.commit(tx);
    const reclaimedBefore = store.stats().reclaimedRecords;
    try {
      store.commit(tx);
      const rolled = store.stats().reclaimedRecords - reclaimedBefore;
      // `after` stays as the checks saw it (un-rolled); the running model takes the rollover.
      if (rolled > 0) {
        model = after.clone();
        model.reclaimOldest(rolled);
      } else model = after;
    } catch (error) {
      // The store refused the transaction (full): it changed nothing, nor does the model.
      if (!(error instanceof StoreError && error.code === "STORAGE_FULL")) throw error;
    }
    txIndex++;
  }
  chip.setObserver(null);
  return { cutPoints, failures, operations: chip.opCount };
}

function checkTorn(torn: NandChip, options: CampaignOptions, cache: DecryptCache, before: ModelStore, after: ModelStore, keys: readonly { type: number; id: number }[], rng: Rng): string | null {
  let mounted: FlashStore;
  try {
    mounted = FlashStore.mount(torn, { key: options.key, cache });
  } catch (error) {
    return `mount failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  let matched: ModelStore;
  try {
    const reading = new StoreReading(mounted, keys, mounted.stats());
    const d1 = diffReading(reading, before);
    if (d1 === null) matched = before;
    else {
      // "after" may include rollover: the store says how many records it reclaimed.
      const afterStats = after.stats();
      const rolled = reading.stats.reclaimedRecords - afterStats.reclaimedRecords;
      let afterRolled = after;
      if (rolled > 0 && rolled <= afterStats.reclaimableRecords) {
        afterRolled = after.clone();
        afterRolled.reclaimOldest(rolled);
      }
      const d2 = diffReading(reading, afterRolled);
      if (d2 !== null) return `neither before (${d1}) nor after (${d2})`;
      matched = afterRolled;
    }
  } catch (error) {
    return `read failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!options.resume) return null;
  try {
    const model = matched.clone();
    const k = keys[rng.int(keys.length)] ?? { type: 0x50, id: 0 };
    const tx: TxOp[] = [{ kind: "put", type: k.type, id: k.id, value: rng.bytes(rng.int(200)) }];
    const reclaimedBefore = mounted.stats().reclaimedRecords;
    mounted.commit(tx);
    model.commit(tx);
    const rolled = mounted.stats().reclaimedRecords - reclaimedBefore;
    if (rolled > 0) model.reclaimOldest(rolled);
    const again = FlashStore.mount(torn, { key: options.key, cache });
    const d = diffStores(again, model, keys);
    return d === null ? null : `after resume: ${d}`;
  } catch (error) {
    if (error instanceof StoreError && error.code === "STORAGE_FULL") return null;
    return `resume failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}
