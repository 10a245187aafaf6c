/**
 * The campaign's record-set fast path (and its shortcuts: records shown equal by
 * FlashStore.readsSameAs, boundary values taken from the previous boundary, the fingerprint of
 * an earlier APDU-judged point with the same record set) must decide
 * every point exactly as the full APDU judge does: same points, same verdicts, same failures.
 */
import { describe, expect, it } from "vitest";
import { runCampaign, type Scenario } from "../../hil/index.ts";
import { bureau, draft, issue } from "../../hil/ukey-ops.ts";
import { issuer, selectApplication } from "../../src/tax/index.ts";

const verdicts = (r: Awaited<ReturnType<typeof runCampaign>>) => r.points!.map((p) => `${p.item} ${p.step} ${p.cut} ${p.ok}`);

describe("campaign fast path", () => {
  it("agrees point by point with the APDU judge on a nearly full store (rollover) and on PIN tries", async () => {
    const options = { seed: 9, scenarios: ["rollover", "pin-verify"], traces: false, listPoints: true };
    const fast = await runCampaign(options);
    const full = await runCampaign({ ...options, fullJudge: true });
    expect(fast.fastVerdicts).toBeGreaterThan(fast.cutPoints / 2);
    expect(full.fastVerdicts).toBe(0);
    expect(verdicts(fast)).toEqual(verdicts(full));
    expect(fast.failures).toEqual([]);
  }, 60_000);

  it("still tells a torn store that matches neither side: same failures as the APDU judge", async () => {
    const code = (c: Parameters<Scenario["steps"]>[0]) => c.keys.profile.purchases[0]!;
    const twoInOne: Scenario = {
      name: "two-issues-in-one-step", description: "a deliberately non-atomic step, on a store holding a few invoices",
      setup: async (c) => {
        for (let i = 0; i < 4; i++) await issue(c.send, draft(c.keys.profile, {}, 100 + i));
      },
      watch: (k) => [0, 1, 2, 3, 4, 5].map((i) => ({ code: k.profile.purchases[0]!.invoiceCode, number: k.profile.purchases[0]!.startNumber + i })),
      steps: () => {
        let s: Awaited<ReturnType<typeof bureau>>;
        return [
          { name: "two", run: async (c) => { await issue(c.send, draft(c.keys.profile, {}, 300)); await issue(c.send, draft(c.keys.profile, {}, code(c).count)); } },
          {
            // the same records, other values in between: only the values tell the torn state apart
            name: "limits-twice", prep: async (c) => { await selectApplication(c.send); s = await bureau(c.send, c.cardKey); },
            run: async (c) => { await issuer.setLimits(c.send, s, { ...c.keys.profile.limits, maxOfflineCount: 41 }); await issuer.setLimits(c.send, s, { ...c.keys.profile.limits, maxOfflineCount: 42 }); },
          },
        ];
      },
    };
    const fast = await runCampaign({ seed: 8, customScenarios: [twoInOne], traces: false, listPoints: true });
    const full = await runCampaign({ seed: 8, customScenarios: [twoInOne], traces: false, listPoints: true, fullJudge: true });
    expect(fast.failures.length).toBeGreaterThan(0);
    expect(fast.failures.some((f) => f.step === "limits-twice")).toBe(true);
    expect(fast.fastVerdicts).toBeGreaterThan(0);
    expect(verdicts(fast)).toEqual(verdicts(full));
    expect(fast.failures).toEqual(full.failures);
  }, 60_000);
});
