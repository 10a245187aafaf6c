/**
 * Exhaustive single-cut enumeration (littlefs style): every mutating flash operation of each
 * scenario is torn once on a fork; the remounted store must equal the model before or after
 * the interrupted transaction, and must accept a further transaction. A failure prints
 * `replay: seed=S scenario=NAME cut=K`; rerun one cut with runCutCampaign(..., { only }).
 */
import { describe, expect, it } from "vitest";
import { campaignKey, randomScenario, runCutCampaign, type CutScenario } from "../../src/flash-store/index.ts";
import { CRITICAL_TYPE, INVOICE_TYPE, KEY, TINY } from "./helpers.ts";

const LONG = !!process.env.UKEYSIM_LONG;

function scenario(name: string, seed: number, txs: number, opts: { keys?: number; bigChance?: number } = {}): CutScenario {
  // Same generator and key as `ukeysim flash-campaign --seed S --txs N --keys K --big-chance P`.
  return { ...randomScenario(seed, { txs, ...opts }), name };
}

const SCENARIOS: { s: CutScenario; seed: number }[] = [
  { s: scenario("mixed", 11, LONG ? 400 : 60), seed: 11 },
  { s: scenario("big-records", 12, LONG ? 200 : 30, { bigChance: 0.4 }), seed: 12 },
  { s: scenario("hot-keys", 13, LONG ? 400 : 120, { keys: 3 }), seed: 13 },
  {
    s: {
      name: "critical-pair",
      setup: [[{ kind: "put", type: CRITICAL_TYPE, id: 1, value: new Uint8Array(40).fill(1) }]],
      transactions: [
        [{ kind: "put", type: CRITICAL_TYPE, id: 1, value: new Uint8Array(50).fill(2) }, { kind: "put", type: INVOICE_TYPE, id: 9, value: new Uint8Array(300).fill(3) }],
        [{ kind: "delete", type: CRITICAL_TYPE, id: 1 }, { kind: "reclaimable", type: INVOICE_TYPE, id: 9 }],
      ],
    },
    seed: 14,
  },
];

describe("exhaustive single power cut", () => {
  for (const { s, seed } of SCENARIOS) {
    it(`scenario ${s.name}: every cut leaves before-or-after and a usable store`, () => {
      const result = runCutCampaign(s, { geometry: TINY, key: campaignKey(seed), seed, resume: true });
      // The random scenarios replay from the CLI: ukeysim flash-campaign --seed S --txs N [--big-chance P] --cut K
      for (const f of result.failures.slice(0, 5)) console.error(`${f.replay} tx=${f.tx}: ${f.reason}`);
      expect(result.cutPoints).toBeGreaterThan(s.transactions.length);
      expect(result.failures).toEqual([]);
    });
  }

  it("shards add up to the whole campaign", () => {
    const s = scenario("shards", 21, 25);
    const whole = runCutCampaign(s, { geometry: TINY, key: KEY, seed: 21 });
    const parts = [0, 1, 2].map((index) => runCutCampaign(s, { geometry: TINY, key: KEY, seed: 21, shard: { index, count: 3 } }));
    expect(parts.reduce((n, p) => n + p.cutPoints, 0)).toBe(whole.cutPoints);
    expect(() => runCutCampaign(s, { geometry: TINY, key: KEY, seed: 21, shard: { index: 3, count: 3 } })).toThrow(RangeError);
  });

  it("replays a single cut by its id", () => {
    const { s, seed } = SCENARIOS[0]!;
    const full = runCutCampaign(s, { geometry: TINY, key: KEY, seed, maxCuts: 40 });
    const one = runCutCampaign(s, { geometry: TINY, key: KEY, seed, only: new Set([full.operations > 50 ? 50 : 5]) });
    expect(one.cutPoints).toBeLessThanOrEqual(1);
    expect(one.failures).toEqual([]);
  });
});
