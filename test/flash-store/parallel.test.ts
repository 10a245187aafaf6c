/**
 * Cut campaigns on worker threads (CutCampaignPool, `ukeysim flash-campaign --jobs N`): the
 * merged result must be exactly the serial one, so replay ids printed by a parallel run
 * replay the same cut on one thread.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CutCampaignPool, mergeCutResults, randomScenario, runCutCampaign, stretchOf, subShard, type CampaignResult } from "../../src/flash-store/index.ts";
import { KEY, TINY } from "./helpers.ts";

describe("parallel cut campaign", () => {
  const pool = new CutCampaignPool(2);
  afterAll(() => pool.close());

  it("gives exactly the serial result: cut points, failures, operations; also with a shard and resume", async () => {
    const s = randomScenario(31, { txs: 40, keys: 4 });
    for (const options of [
      { geometry: TINY, key: KEY, seed: 31 },
      { geometry: TINY, key: KEY, seed: 31, resume: true, shard: { index: 1, count: 2 } },
    ]) {
      const serial = runCutCampaign(s, options);
      expect(serial.cutPoints).toBeGreaterThan(40);
      expect(await pool.run(s, options)).toEqual(serial);
    }
  }, 60_000);

  it("stops where the serial run stops under maxCuts", async () => {
    const s = randomScenario(32, { txs: 30 });
    const options = { geometry: TINY, key: KEY, seed: 32, maxCuts: 25 };
    const serial = runCutCampaign(s, options);
    expect(serial.cutPoints).toBe(25);
    expect(await pool.run(s, options)).toEqual(serial);
  }, 60_000);

  it("splits a scenario it has seen into stretches of operations, with the same result", async () => {
    const s = randomScenario(34, { txs: 40, keys: 4 });
    for (const options of [{ geometry: TINY, key: KEY, seed: 34, resume: true }, { geometry: TINY, key: KEY, seed: 34, maxCuts: 30 }]) {
      const serial = runCutCampaign(s, options);
      expect(await pool.run(s, options)).toEqual(serial); // first sight: split by index modulo threads
      expect(await pool.run(s, options)).toEqual(serial); // then by stretches
    }
  }, 60_000);

  it("stretches partition the operations; a stretch run judges its cuts and stops after them", () => {
    const s = randomScenario(35, { txs: 30, keys: 4 });
    const options = { geometry: TINY, key: KEY, seed: 35 };
    const serial = runCutCampaign(s, options);
    for (const jobs of [1, 2, 3]) {
      const stretches = Array.from({ length: jobs }, (_, j) => stretchOf(serial.operations, j, jobs));
      expect(stretches[0]!.from).toBe(0);
      for (let j = 1; j < jobs; j++) expect(stretches[j]!.from).toBe(stretches[j - 1]!.to);
      expect(stretches[jobs - 1]!.to).toBeUndefined();
      const parts = stretches.map((range) => runCutCampaign(s, { ...options, range }));
      for (let j = 0; j < jobs - 1; j++) {
        expect(parts[j]!.partial).toBe(true);
        expect(parts[j]!.operations).toBeLessThan(serial.operations);
      }
      expect(mergeCutResults(parts)).toEqual(serial);
    }
    expect(() => runCutCampaign(s, { ...options, range: { from: 5, to: 2 } })).toThrow(RangeError);
  });

  it("reports an error thrown on a thread with its message, and stays usable", async () => {
    const s = randomScenario(33, { txs: 3 });
    await expect(pool.run(s, { geometry: { ...TINY, pageBytes: 100 }, key: KEY, seed: 33 })).rejects.toThrow(/campaign worker: .*geometry pageBytes/);
    await expect(pool.run(s, { geometry: TINY, key: KEY, seed: 33, shard: { index: 2, count: 2 } })).rejects.toThrow(RangeError);
    expect((await pool.run(s, { geometry: TINY, key: KEY, seed: 33 })).failures).toEqual([]);
  }, 60_000);

  it("merges failures in operation order and cuts them at maxCuts", () => {
    const fail = (cut: number) => ({ cut, tx: cut >> 2, replay: `replay: seed=1 scenario=s cut=${cut}`, reason: "r" });
    const a: CampaignResult = { cutPoints: 3, failures: [fail(0), fail(4)], operations: 99, judged: [0, 2, 4] };
    const b: CampaignResult = { cutPoints: 3, failures: [fail(3)], operations: 99, judged: [1, 3, 5] };
    expect(mergeCutResults([a, b]).failures.map((f) => f.cut)).toEqual([0, 3, 4]);
    const cut = mergeCutResults([a, b], 4);
    expect(cut.cutPoints).toBe(4);
    expect(cut.failures.map((f) => f.cut)).toEqual([0, 3]);
    expect(() => mergeCutResults([a, { ...b, operations: 98 }])).toThrow(/different scenarios/);
    expect(mergeCutResults([{ ...a, operations: 50, partial: true }, b]).operations).toBe(99);
    expect(() => mergeCutResults([{ ...a, operations: 120, partial: true }, b])).toThrow(/different scenarios/);
    expect(() => mergeCutResults([{ ...a, partial: true }])).toThrow(/whole scenario/);
  });

  it("sub-shards partition a shard", () => {
    const owner = (k: number, parts: number) => [0, 1, 2].filter((j) => j < parts && k % subShard({ index: 1, count: 3 }, j, parts).count === subShard({ index: 1, count: 3 }, j, parts).index);
    for (let k = 0; k < 60; k++) expect(owner(k, 3).length).toBe(k % 3 === 1 ? 1 : 0);
  });
});
