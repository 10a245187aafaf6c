/**
 * The campaign's record-set fast path (and its shortcuts: records shown equal by
 * FlashStore.readsSameAs, boundary values taken from the previous boundary, the fingerprint of
 * an earlier APDU-judged point with the same record set, boundary prints kept across campaigns
 * for equal cells) must decide
 * every point exactly as the full APDU judge does: same points, same verdicts, same failures.
 */
import { describe, expect, it } from "vitest";
import { runCampaign, scenarioByName, type Scenario } from "../../hil/index.ts";
import { sameCells } from "../../hil/campaign.ts";
import { FlashStore, NandChip, SMALL_GEOMETRY } from "../../src/flash-store/index.ts";
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

  it("sameCells: equal only for the same cells (pages, erase counts, secure area), read without faults", () => {
    const key = new Uint8Array(16).fill(3);
    const chip = NandChip.memory({ geometry: SMALL_GEOMETRY });
    const store = FlashStore.format(chip, { key });
    store.commit([{ kind: "put", type: 0x50, id: 1, value: new Uint8Array([1, 2, 3]) }]);
    const twin = NandChip.memory({ geometry: SMALL_GEOMETRY });
    FlashStore.format(twin, { key }).commit([{ kind: "put", type: 0x50, id: 1, value: new Uint8Array([1, 2, 3]) }]);
    expect(sameCells(chip, chip.fork())).toBe(true);
    expect(sameCells(chip, twin)).toBe(true); // equal bytes, other buffers
    const more = chip.fork();
    FlashStore.mount(more, { key }).commit([{ kind: "put", type: 0x50, id: 2, value: new Uint8Array([4]) }]);
    expect(sameCells(chip, more)).toBe(false);
    const secret = chip.fork();
    secret.writeSecureArea(0, new Uint8Array([9]));
    expect(sameCells(chip, secret)).toBe(false);
    const worn = chip.fork();
    worn.wearOut(5);
    expect(sameCells(chip, worn)).toBe(false);
    const stuck = chip.fork();
    stuck.stickBit(1, 1, 0, 0);
    expect(sameCells(chip, stuck)).toBe(false);
  });

  it("boundary prints kept across campaigns: a second campaign gives the same result; another scenario of the same name does not take them", async () => {
    const pinChange = scenarioByName("pin-change");
    // same name and seed, other boundaries: two invoices in one step (not atomic: failures whose reasons print both boundaries)
    const impostor: Scenario = {
      name: "pin-change", description: "not the standard one",
      watch: (k) => [0, 1].map((i) => ({ code: k.profile.purchases[0]!.invoiceCode, number: k.profile.purchases[0]!.startNumber + i })),
      steps: () => [{ name: "change", run: async (c) => { await issue(c.send, draft(c.keys.profile, {}, 100)); await issue(c.send, draft(c.keys.profile, {}, 200)); } }],
    };
    const options = { seed: 12, traces: false, listPoints: true };
    const impostorFirst = await runCampaign({ ...options, customScenarios: [impostor] });
    expect(impostorFirst.failures.length).toBeGreaterThan(0);
    const standard = await runCampaign({ ...options, customScenarios: [pinChange] });
    const standardFull = await runCampaign({ ...options, customScenarios: [pinChange], fullJudge: true });
    expect(standard.failures).toEqual([]);
    expect(verdicts(standard)).toEqual(verdicts(standardFull));
    expect(await runCampaign({ ...options, customScenarios: [pinChange] })).toEqual(standard);
    expect(await runCampaign({ ...options, customScenarios: [impostor] })).toEqual(impostorFirst);
  }, 60_000);
});
