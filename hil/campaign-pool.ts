/**
 * Power-cut campaigns on worker threads. A CampaignPool starts N threads once (each loads
 * the COS and keeps its own per-seed memo of base devices and scenario set-ups, so a second
 * campaign on the same pool starts warm) and spreads a campaign's work over them:
 *
 *  - an exhaustive campaign of all items (no --shard, no --only) is split by scenario: each
 *    scenario is run and judged whole on one thread (a scenario's run is not repeated), the
 *    threads taking the next scenario as they free up, longest (as last seen) first;
 *  - otherwise (random mode, a --shard) thread j takes the items of the sub-shard j of the
 *    shard (item k mod n*jobs == i-1 + j*n), every thread running every scenario.
 *
 * Either way the parts combine into exactly what runCampaign returns in one thread: same
 * items, same points, same failures in the same order with the same replay commands and
 * traces (a point's verdict depends on the seed, its scenario and its cut only).
 */
import { CampaignWorkers, checkJobs, defaultJobs, serveCampaignWorker, type WorkerHandler } from "../src/flash-store/index.ts";
import { campaignId, runCampaign, SCENARIOS, scenarioByName, type CampaignOptions, type CampaignResult, type PointResult } from "./campaign.ts";
import { WHOLE, type Shard } from "./shard.ts";

/**
 * The options a worker thread can take (no functions, no custom scenarios: they do not cross
 * threads); `progress`: post (done, total) after each point (only when the caller listens:
 * a message per point is a measurable part of a small campaign).
 */
type WorkerOptions = Omit<CampaignOptions, "customScenarios" | "now" | "onTimings" | "onProgress"> & { progress?: boolean };

/** On a CampaignPool's worker thread: serves runCampaign requests. */
export function serveCampaignPoolWorker(): void {
  serveCampaignWorker((({ progress: wanted, ...options }: WorkerOptions, progress: (p: unknown) => void) =>
    runCampaign(wanted ? { ...options, onProgress: (done, total) => progress([done, total]) } : options)) as WorkerHandler);
}

export class CampaignPool {
  private readonly workers: CampaignWorkers;
  /**
   * What each scenario cost when last run here, to hand out the costly ones first: its
   * milliseconds by options.now when given (no clock is read otherwise), else its cut points.
   */
  private readonly lastCost = new Map<string, number>();
  /**
   * Per thread, the (seed, scenario) pairs it has run: it holds their base devices and
   * set-ups (the rollover set-up fills a store: ~100 times a warm run). A free thread takes
   * the costliest queued scenario it is warm for, else the costliest queued one (takeFor),
   * so warm campaigns do not rebuild a set-up on another thread. Scheduling only: any
   * thread gives the same result.
   */
  private readonly warm: Set<string>[] = [];

  constructor(readonly jobs = defaultJobs()) {
    this.workers = new CampaignWorkers(import.meta.url, "serveCampaignPoolWorker", checkJobs(jobs));
  }

  /** runCampaign spread over the pool's threads (see the file comment); results as runCampaign's. */
  async run(options: CampaignOptions): Promise<CampaignResult> {
    if (options.customScenarios?.length) throw new RangeError("custom scenarios cannot run on worker threads (functions do not cross threads): use runCampaign");
    if (options.only) return runCampaign(options); // one item: nothing to spread
    const { onProgress, now, onTimings: _onTimings, customScenarios: _custom, ...rest } = options;
    const plain: WorkerOptions = { ...rest, ...(onProgress ? { progress: true } : {}) };
    const shard = options.shard ?? WHOLE;
    const tally = progressTally(onProgress);
    if ((options.mode ?? "exhaustive") === "exhaustive" && shard.count === 1) return this.byScenario(plain, tally, now);
    const parts = await Promise.all(
      Array.from({ length: this.jobs }, (_, j) => this.workers.call<CampaignResult>(j, { ...plain, shard: { index: shard.index + j * shard.count, count: shard.count * this.jobs } }, tally(j))),
    );
    return combine(parts, shard);
  }

  close(): Promise<void> {
    return this.workers.close();
  }

  /** Each scenario whole on one thread, the free thread taking the next; merged in campaign order. */
  private async byScenario(options: WorkerOptions, tally: (part: number) => ((p: unknown) => void) | undefined, now: (() => number) | undefined): Promise<CampaignResult> {
    const names = options.scenarios?.length ? options.scenarios.map((n) => scenarioByName(n).name) : SCENARIOS.map((s) => s.name);
    const queue = names.map((name, order) => ({ name, order })).sort((a, b) => (this.lastCost.get(b.name) ?? 0) - (this.lastCost.get(a.name) ?? 0) || a.order - b.order);
    const results = new Map<string, CampaignResult>();
    const drain = async (j: number) => {
      const warm = (this.warm[j] ??= new Set());
      for (let next = takeFor(queue, warm, options.seed); next; next = takeFor(queue, warm, options.seed)) {
        const started = now?.() ?? 0;
        const r = await this.workers.call<CampaignResult>(j, { ...options, scenarios: [next.name] }, tally(next.order));
        results.set(next.name, r);
        warm.add(warmKey(options.seed, next.name));
        this.lastCost.set(next.name, now ? now() - started : r.cutPoints);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.jobs, names.length) }, (_, j) => drain(j)));
    return concatenate(names.map((n) => results.get(n) as CampaignResult), names, options.listPoints === true);
  }
}

const warmKey = (seed: number, scenario: string): string => `${seed}/${scenario}`;

/** Removes and returns the first queued scenario `warm` holds, else the first one (the queue is costliest first). */
function takeFor<T extends { name: string }>(queue: T[], warm: ReadonlySet<string>, seed: number): T | undefined {
  const k = queue.findIndex((q) => warm.has(warmKey(seed, q.name)));
  return queue.splice(k < 0 ? 0 : k, 1)[0];
}

/** runCampaign on `jobs` worker threads (a pool started and closed for this one campaign). */
export async function runCampaignParallel(options: CampaignOptions, jobs = defaultJobs()): Promise<CampaignResult> {
  if (jobs === 1 || options.only || options.customScenarios?.length) return runCampaign(options);
  const pool = new CampaignPool(jobs);
  try {
    return await pool.run(options);
  } finally {
    await pool.close();
  }
}

/** Sums the (done, total) progress of several parts into one onProgress. */
function progressTally(onProgress: CampaignOptions["onProgress"]): (part: number) => ((p: unknown) => void) | undefined {
  if (!onProgress) return () => undefined;
  const seen = new Map<number, [number, number]>();
  return (part) => (p) => {
    seen.set(part, p as [number, number]);
    let done = 0;
    let total = 0;
    for (const [d, t] of seen.values()) {
      done += d;
      total += t;
    }
    onProgress(done, total);
  };
}

/**
 * The whole campaign from per-scenario campaigns, in campaign order: scenario s's items are
 * the ones after every earlier scenario's (the work list is built scenario by scenario), so an
 * item index moves by the number of items before its scenario.
 */
export function concatenate(parts: readonly CampaignResult[], names: string[], listPoints: boolean): CampaignResult {
  const first = parts[0] as CampaignResult;
  const params: CampaignResult["params"] = { ...first.params, scenarios: names };
  const out: CampaignResult = {
    format: first.format, campaignId: campaignId(params), params, shard: WHOLE, totalItems: 0, cutPoints: 0, passed: 0, failures: [], items: [], perScenario: {}, fastVerdicts: 0,
  };
  const points: PointResult[] = [];
  for (const p of parts) {
    const offset = out.totalItems;
    out.totalItems += p.totalItems;
    out.cutPoints += p.cutPoints;
    out.passed += p.passed;
    out.fastVerdicts += p.fastVerdicts;
    for (const i of p.items) out.items.push(offset + i);
    for (const f of p.failures) out.failures.push({ ...f, item: offset + f.item });
    for (const pt of p.points ?? []) points.push({ ...pt, item: offset + pt.item });
    Object.assign(out.perScenario, p.perScenario);
  }
  if (listPoints && points.length) out.points = points;
  return out;
}

/** The parts of one shard (disjoint sub-shards with the same item list) as that shard's result. */
export function combine(parts: readonly CampaignResult[], shard: Shard): CampaignResult {
  const first = parts[0] as CampaignResult;
  const perScenario: CampaignResult["perScenario"] = {};
  for (const p of parts) {
    if (p.campaignId !== first.campaignId || p.totalItems !== first.totalItems) throw new Error("worker threads ran different campaigns");
    for (const [k, v] of Object.entries(p.perScenario)) {
      const t = (perScenario[k] ??= { cutPoints: 0, failures: 0 });
      t.cutPoints += v.cutPoints;
      t.failures += v.failures;
    }
  }
  const sum = (f: (p: CampaignResult) => number) => parts.reduce((n, p) => n + f(p), 0);
  const out: CampaignResult = {
    format: first.format, campaignId: first.campaignId, params: first.params, shard, totalItems: first.totalItems,
    cutPoints: sum((p) => p.cutPoints), passed: sum((p) => p.passed),
    failures: parts.flatMap((p) => p.failures).sort((a, b) => a.item - b.item),
    items: parts.flatMap((p) => p.items).sort((a, b) => a - b),
    perScenario, fastVerdicts: sum((p) => p.fastVerdicts),
  };
  if (parts.some((p) => p.points)) out.points = parts.flatMap((p) => p.points ?? []).sort((a, b) => a.item - b.item);
  return out;
}
