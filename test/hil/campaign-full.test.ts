/**
 * The standard campaign end to end. Bounded for npm test (two scenarios, single cuts);
 * UKEYSIM_LONG=1 (npm run test:long) runs every scenario with single and double cuts and a
 * long differential run.
 */
import { describe, expect, it } from "vitest";
import { runCampaign, runDifferential, SCENARIOS } from "../../hil/index.ts";

const LONG = process.env.UKEYSIM_LONG === "1";

describe(`standard power-cut campaign (${LONG ? "long" : "bounded"})`, () => {
  it("every cut point leaves the old state or the new one", async () => {
    const scenarios = LONG ? SCENARIOS.map((s) => s.name) : ["sync", "red"];
    for (const cuts of LONG ? ([1, 2] as const) : ([1] as const)) {
      const r = await runCampaign({ seed: 11, scenarios, cuts, traces: true });
      expect(r.failures.map((f) => `${f.scenario} ${f.cut}${f.second !== undefined ? `+${f.second}` : ""}: ${f.reason}\n${f.replay}`)).toEqual([]);
      expect(Object.keys(r.perScenario)).toEqual(scenarios);
      for (const s of scenarios) expect(r.perScenario[s]!.cutPoints, s).toBeGreaterThan(0);
    }
  }, LONG ? 0 : 60_000);

  it("the NAND target and the ModelStore reference agree on random command sequences", async () => {
    const r = await runDifferential({ seed: 21, runs: LONG ? 2000 : 20 });
    expect(r.message ? `${r.message}\n${r.detail}` : "").toBe("");
    expect(r.ok).toBe(true);
  }, LONG ? 0 : 60_000);
});
