/**
 * Power-cut campaigns (littlefs style): run a scenario once on a chip and, at every
 * mutating flash operation k, fork the chip, tear operation k on the fork, remount the store
 * on it and check that it equals the model either before or after the transaction that was
 * being committed. The printed replay id is `seed=S scenario=NAME cut=K` (K = op index).
 * A cut's verdict depends on the seed, the scenario and K only, so a campaign may be split
 * into shards and spread over worker threads (CutCampaignPool, below) with the same result.
 */
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { parentPort, Worker } from "node:worker_threads";
import { Rng } from "../sim/index.ts";
import { StoreError, type RecordStore, type StoreStats, type TxOp } from "./api.ts";
import type { Geometry } from "./geometry.ts";
import { ModelStore } from "./model.ts";
import { NandChip, tearOperationOnFork, type NandOp } from "./nand.ts";
import { DecryptCache, FlashStore } from "./store.ts";
import { bytesEqual } from "./layout.ts";

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
  /**
   * Only cut operations with from <= k < to; with `to`, the scenario stops once it has run
   * every operation below `to` (a worker thread that owns the first stretch of a campaign
   * does not run the rest of it). The result is then `partial`.
   */
  range?: { from: number; to?: number };
}

export interface CampaignResult {
  cutPoints: number;
  failures: CutFailure[];
  /** Operations the scenario ran in total (reads included). */
  operations: number;
  /** Operation indices judged, ascending; only with maxCuts (a parallel run needs them to cut the merge where a serial run stops). */
  judged?: number[];
  /** The scenario stopped early (range.to): `operations` counts only the operations it ran. */
  partial?: true;
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
  const sb = model.counts();
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
  checkShard(options.shard);
  checkRange(options.range);
  const chip = NandChip.memory({ geometry: options.geometry });
  const cache = new DecryptCache();
  const store = FlashStore.format(chip, { key: options.key, cache });
  let model = new ModelStore();
  for (const tx of scenario.setup) {
    store.commit(tx);
    model.commit(tx);
  }
  const keys = keysOf([...scenario.setup, ...scenario.transactions]);
  const failures: CutFailure[] = [];
  let cutPoints = 0;
  let txIndex = 0;
  // The models either side of the transaction being committed. Models are never modified
  // once they stand for a committed state (each transaction makes new ones), so `before` may
  // be the running model itself and the check can share them without copies.
  let before = model;
  let after = model;
  const maxCuts = options.maxCuts ?? Number.POSITIVE_INFINITY;
  const judged = options.maxCuts === undefined ? undefined : ([] as number[]);
  const check = (k: number, op: NandOp) => {
    if (op.kind === "read" || cutPoints >= maxCuts) return;
    if (options.only && !options.only.has(k)) return;
    if (options.shard && k % options.shard.count !== options.shard.index) return;
    if (options.range && (k < options.range.from || k >= (options.range.to ?? Number.POSITIVE_INFINITY))) return;
    cutPoints++;
    judged?.push(k);
    const torn = tearOperationOnFork(chip, op, new Rng(options.seed, k));
    // The resume transaction's rng is the cut's own: a cut's verdict never depends on which
    // other cuts ran before it (shards, worker threads and replays all judge it alike).
    const reason = checkTorn(torn, options, cache, before, after, keys, new Rng(options.seed, k).fork("resume"));
    if (reason) failures.push({ cut: k, tx: txIndex, replay: replayId(options.seed, scenario.name, k), reason });
  };
  chip.setObserver(check);
  // The store's rollover count, carried from one transaction to the next (one stats() each).
  let reclaimed = store.stats().reclaimedRecords;
  const stopAt = options.range?.to ?? Number.POSITIVE_INFINITY;
  let partial = false;
  for (const tx of scenario.transactions) {
    if (chip.opCount >= stopAt) {
      partial = true; // every operation of the range has run (and been cut)
      break;
    }
    before = model;
    after = model.clone();
    after.commit(tx);
    try {
      store.commit(tx);
      const now = store.stats().reclaimedRecords;
      const rolled = now - reclaimed;
      reclaimed = now;
      // `after` stays as the checks saw it (un-rolled); the running model takes the rollover.
      if (rolled > 0) {
        model = after.clone();
        model.reclaimOldest(rolled);
      } else model = after;
    } catch (error) {
      // The store refused the transaction (full): it changed nothing, nor does the model.
      if (!(error instanceof StoreError && error.code === "STORAGE_FULL")) throw error;
      reclaimed = store.stats().reclaimedRecords;
    }
    txIndex++;
  }
  chip.setObserver(null);
  return { cutPoints, failures, operations: chip.opCount, ...(judged ? { judged } : {}), ...(partial ? { partial: true as const } : {}) };
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
      const afterStats = after.counts();
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


// ---- worker threads ----------------------------------------------------------------------------

/** Worker threads a parallel campaign uses when not told: one per core. */
export function defaultJobs(): number {
  return availableParallelism();
}

/** Most worker threads a campaign starts (each runs the whole scenario on its own chip). */
export const MAX_JOBS = 64;

export function checkJobs(jobs: number): number {
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) throw new RangeError(`jobs must be an integer 1..${MAX_JOBS}, got ${jobs}`);
  return jobs;
}

/**
 * Shard `part` of `parts` inside shard `outer` (0-based i of n): operation k belongs to it when
 * k % n == i and floor(k / n) % parts == part, i.e. k % (n * parts) == i + part * n. The parts
 * of a shard are disjoint and add up to it, so a shard can be spread over worker threads.
 */
export function subShard(outer: { index: number; count: number } | undefined, part: number, parts: number): { index: number; count: number } {
  const o = outer ?? { index: 0, count: 1 };
  return { index: o.index + part * o.count, count: o.count * parts };
}

interface WorkerRequest { id: number; args: unknown }
interface WorkerReply { id: number; progress?: unknown; value?: unknown; error?: string }

/**
 * A function a campaign worker thread serves: it gets the request's arguments and a
 * `progress` callback (relayed to the caller) and returns (or resolves to) the reply, which
 * must survive structured cloning.
 */
export type WorkerHandler = (args: never, progress: (p: unknown) => void) => unknown;

/**
 * Serves `handler` on this worker thread (call it from the module a CampaignWorkers pool
 * starts). Requests are handled one at a time, in order.
 */
export function serveCampaignWorker(handler: WorkerHandler): void {
  const port = parentPort;
  if (!port) throw new Error("serveCampaignWorker must run on a worker thread");
  let queue = Promise.resolve();
  port.on("message", (request: WorkerRequest) => {
    queue = queue.then(async () => {
      const progress = (p: unknown) => port.postMessage({ id: request.id, progress: p } satisfies WorkerReply);
      try {
        const value = await (handler as (args: unknown, progress: (p: unknown) => void) => unknown)(request.args, progress);
        port.postMessage({ id: request.id, value } satisfies WorkerReply);
      } catch (error) {
        port.postMessage({ id: request.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies WorkerReply);
      }
    });
  });
}

/**
 * A pool of worker threads, each running the module `moduleUrl` (TypeScript, loaded through
 * tsx as the CLI is) whose top level calls serveCampaignWorker. Threads start once and serve
 * any number of requests, so a campaign pays their start-up (module load, JIT warm-up) once.
 * Not re-entrant per worker: a worker handles its requests in order.
 */
export class CampaignWorkers {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; progress?: (p: unknown) => void }>();
  private nextId = 1;
  private closed = false;
  /** Set when a thread failed or exited on its own: the pool then refuses every call. */
  private broken: Error | undefined;

  constructor(moduleUrl: string, serve: string, readonly size: number) {
    checkJobs(size);
    // The worker's entry is plain JavaScript: it registers tsx (worker threads do not inherit
    // the parent's --import hooks for their entry on Node 20), loads the TypeScript module
    // and calls its `serve` export (no module serves merely by being imported on a thread).
    const boot = `import { register } from ${JSON.stringify(tsxApiUrl())}; register(); (await import(${JSON.stringify(moduleUrl)}))[${JSON.stringify(serve)}]();`;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`));
      worker.on("message", (reply: WorkerReply) => this.settle(reply));
      worker.on("error", (error) => this.break(error));
      worker.on("exit", (code) => {
        if (!this.closed) this.break(new Error(`campaign worker exited with code ${code}`));
      });
      this.workers.push(worker);
    }
  }

  /** Sends `args` to worker `index`; resolves to its handler's reply. */
  call<T>(index: number, args: unknown, progress?: (p: unknown) => void): Promise<T> {
    if (this.closed) return Promise.reject(new Error("campaign workers are closed"));
    if (this.broken) return Promise.reject(this.broken);
    const worker = this.workers[index];
    if (!worker) throw new RangeError(`no worker ${index} in a pool of ${this.size}`);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...(progress ? { progress } : {}) });
      worker.postMessage({ id, args } satisfies WorkerRequest);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.failAll(new Error("campaign workers closed"));
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    if ("progress" in reply) {
      p.progress?.(reply.progress);
      return;
    }
    this.pending.delete(reply.id);
    if (reply.error !== undefined) p.reject(new Error(`campaign worker: ${reply.error}`));
    else p.resolve(reply.value);
  }

  private break(error: Error): void {
    this.broken ??= error;
    this.failAll(error);
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}

/** Where tsx's ESM API is, resolved from this package (not from the caller's directory). */
function tsxApiUrl(): string {
  const cjs = createRequire(import.meta.url).resolve("tsx/esm/api");
  return pathToFileURL(cjs.replace(/index\.cjs$/, "index.mjs")).href;
}

/** On a CutCampaignPool's worker thread: serves runCutCampaign requests. */
export function serveCutCampaignWorker(): void {
  serveCampaignWorker(((args: { scenario: CutScenario; options: CampaignOptions }) => runCutCampaign(args.scenario, args.options)) as WorkerHandler);
}

/** Worker threads for runCutCampaign: start once (cutCampaignPool), run many campaigns, close. */
export class CutCampaignPool {
  private readonly workers: CampaignWorkers;
  /**
   * Operations each scenario ran when last seen here. A scenario seen before is split into
   * stretches of consecutive operations (stretchOf), so a thread runs the scenario only up
   * to its stretch's end; a new one is split by operation index modulo the threads (every
   * thread runs it whole). Either split judges every cut once: results are the same.
   */
  private readonly operations = new Map<string, number>();

  constructor(readonly jobs = defaultJobs()) {
    this.workers = new CampaignWorkers(import.meta.url, "serveCutCampaignWorker", checkJobs(jobs));
  }

  /**
   * runCutCampaign spread over the pool: worker j judges subShard(options.shard, j, jobs) and
   * the parts merge into exactly what a serial run returns (same cut points, failures in the
   * same order with the same replay ids and reasons: a cut's verdict depends on the cut alone).
   */
  async run(scenario: CutScenario, options: CampaignOptions): Promise<CampaignResult> {
    checkShard(options.shard);
    checkRange(options.range);
    const known = this.operations.get(scenarioKey(scenario));
    const split = (j: number): CampaignOptions =>
      known === undefined || options.shard || options.range || this.jobs === 1
        ? { ...options, shard: subShard(options.shard, j, this.jobs) }
        : { ...options, range: stretchOf(known, j, this.jobs) };
    const parts = await Promise.all(Array.from({ length: this.jobs }, (_, j) => this.workers.call<CampaignResult>(j, { scenario, options: split(j) })));
    const merged = mergeCutResults(parts, options.maxCuts);
    this.operations.set(scenarioKey(scenario), merged.operations);
    return merged;
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}

/** runCutCampaign on `jobs` worker threads (a pool started and closed for this one campaign). */
export async function runCutCampaignParallel(scenario: CutScenario, options: CampaignOptions, jobs = defaultJobs()): Promise<CampaignResult> {
  if (jobs === 1) return runCutCampaign(scenario, options);
  const pool = new CutCampaignPool(jobs);
  try {
    return await pool.run(scenario, options);
  } finally {
    await pool.close();
  }
}

/** What identifies a scenario for the pool's memory of its length (a stale entry only unbalances the split). */
function scenarioKey(scenario: CutScenario): string {
  return `${scenario.name}/${scenario.setup.length}/${scenario.transactions.length}`;
}

/**
 * The share of a campaign's time spent running its scenario (measured: ~8 of ~50 ms for
 * the bench's 300-transaction scenario on a tiny chip); the rest is judging cut points.
 * Only the balance of a stretch split depends on it, never a result.
 */
const SCENARIO_SHARE = 0.15;

/**
 * Stretch j of `jobs` over a scenario of `operations` operations, sized so that every thread
 * takes about as long: thread j runs the scenario up to its stretch's end f_j (a cost S * f_j)
 * and judges its own stretch (C * (f_j - f_j-1)); equal totals give f_j = (1 - a^j) / (1 - a^jobs)
 * with a = C / (S + C). The last stretch is open-ended (it runs to the end, whatever the length).
 */
export function stretchOf(operations: number, j: number, jobs: number): { from: number; to?: number } {
  const a = 1 - SCENARIO_SHARE;
  const edge = (i: number) => Math.round((operations * (1 - a ** i)) / (1 - a ** jobs));
  return j === jobs - 1 ? { from: edge(j) } : { from: edge(j), to: edge(j + 1) };
}

/**
 * Joins the results of disjoint shards of one campaign. With maxCuts the serial run stops
 * after the first maxCuts cut points in operation order; every part judged at most that many
 * of its own, so the first maxCuts of their union are exactly the serial run's.
 */
export function mergeCutResults(parts: readonly CampaignResult[], maxCuts?: number): CampaignResult {
  if (parts.length === 0) throw new RangeError("merge needs at least one part");
  // Parts that ran the whole scenario agree on its length; a partial one ran no further than it.
  const whole = parts.filter((p) => !p.partial);
  if (whole.length === 0) throw new RangeError("merge needs a part that ran the whole scenario");
  const operations = (whole[0] as CampaignResult).operations;
  for (const p of parts) if (p.partial ? p.operations > operations : p.operations !== operations) throw new Error(`parts ran different scenarios: ${p.operations} != ${operations} operations`);
  let failures = parts.flatMap((p) => p.failures).sort((a, b) => a.cut - b.cut);
  if (maxCuts === undefined) return { cutPoints: parts.reduce((n, p) => n + p.cutPoints, 0), failures, operations };
  const judged = parts.flatMap((p) => p.judged ?? []).sort((a, b) => a - b).slice(0, maxCuts);
  const last = judged.length ? (judged[judged.length - 1] as number) : -1;
  failures = failures.filter((f) => f.cut <= last);
  return { cutPoints: judged.length, failures, operations, judged };
}

function checkRange(range: CampaignOptions["range"]): void {
  if (!range) return;
  const { from, to } = range;
  if (!Number.isInteger(from) || from < 0 || (to !== undefined && (!Number.isInteger(to) || to < from))) throw new RangeError(`range must be whole operation indices with 0 <= from <= to, got ${from}..${to}`);
}

function checkShard(shard: CampaignOptions["shard"]): void {
  if (!shard) return;
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`shard must be i/n with 0 <= i < n, got ${index}/${count}`);
}

