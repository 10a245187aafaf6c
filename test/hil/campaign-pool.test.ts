/**
 * COS campaigns on worker threads (CampaignPool, `ukeysim campaign power-cut --jobs N`):
 * split by scenario or by sub-shard, the result must be exactly the serial one.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CampaignPool, parseShard, runCampaign, type CampaignResult } from "../../hil/index.ts";
import { combine, concatenate } from "../../hil/campaign-pool.ts";

describe("parallel power-cut campaign", () => {
  const pool = new CampaignPool(2);
  afterAll(() => pool.close());

  it("by scenario and by sub-shard, gives exactly the serial result", async () => {
    for (const options of [
      { seed: 5, scenarios: ["pin-change", "issue", "void"], traces: false, listPoints: true },
      { seed: 5, scenarios: ["pin-verify", "void"], shard: parseShard("2/3"), traces: false, listPoints: true },
      { seed: 6, scenarios: ["issue", "red"], mode: "random" as const, samples: 9, traces: false },
    ]) {
      const serial = await runCampaign(options);
      expect(serial.cutPoints).toBeGreaterThan(0);
      expect(await pool.run(options)).toEqual(serial);
    }
  }, 120_000);

  it("reports progress only to a caller that listens: every point, summed over the threads", async () => {
    const seen: [number, number][] = [];
    const r = await pool.run({ seed: 5, scenarios: ["void", "red"], traces: false, onProgress: (done, total) => seen.push([done, total]) });
    expect(seen.at(-1)).toEqual([r.cutPoints, r.cutPoints]);
    expect(seen.length).toBe(r.cutPoints);
  }, 60_000);

  it("renumbers items and failures when it joins per-scenario parts, and sorts shard parts by item", () => {
    const part = (name: string, items: number[], failed: number[]): CampaignResult => ({
      format: "ukeysim-campaign/1", campaignId: "x", params: { seed: 1, mode: "exhaustive", cuts: 1, scenarios: [name] }, shard: { index: 1, count: 1 },
      totalItems: items.length, cutPoints: items.length, passed: items.length - failed.length, items,
      failures: failed.map((item) => ({ item, scenario: name, step: "s", cut: 10 + item, ok: false, reason: "r", replay: `ukeysim campaign power-cut --seed 1 --scenario ${name} --cuts 1 --only ${10 + item}` })),
      perScenario: { [name]: { cutPoints: items.length, failures: failed.length } }, fastVerdicts: 0,
    });
    const joined = concatenate([part("a", [0, 1, 2], [1]), part("b", [0, 1], [0])], ["a", "b"], false);
    expect(joined.items).toEqual([0, 1, 2, 3, 4]);
    expect(joined.failures.map((f) => [f.item, f.scenario, f.cut])).toEqual([[1, "a", 11], [3, "b", 10]]);
    expect(joined.params.scenarios).toEqual(["a", "b"]);
    const shards = combine([{ ...part("a", [0, 2], [2]), totalItems: 4 }, { ...part("a", [1, 3], [1]), totalItems: 4 }], { index: 1, count: 1 });
    expect(shards.items).toEqual([0, 1, 2, 3]);
    expect(shards.failures.map((f) => f.item)).toEqual([1, 2]);
  });
});
