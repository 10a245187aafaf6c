import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { taxMachine, StateCode, LockReason, ISSUE_RULES, stateCode, lockReason } from "../../src/cos/index.ts";
import { initialTransition, transition } from "xstate";
import { E, INS, call, decodeLayout, LIMITS_LAYOUT, OFFLINE_STATUS_LAYOUT, issuer, selectApplication, verifyPin } from "../../src/tax/index.ts";
import { toHex } from "../../src/sim/index.ts";
import { readyCard, issue, draft, cmd, bureau, PROFILE } from "./helpers.ts";

type Ctx = Parameters<typeof lockReason>[0];
const baseCtx = (): Ctx => ({
  now: 1000, clockOk: true, limits: { ...PROFILE.limits, validUntil: 10_000, validDays: 3 },
  counters: { invoiceSeq: 0, eventSeq: 0, confirmedThrough: 0, pendingCount: 0, offlineCount: 0, offlineAmountFen: 0, issuedTotal: 0, lastOnlineAt: 900, signCount: 0, lastEventAt: 0, nextNumbers: new Array(10).fill(0) },
  certPresent: true, certNotAfter: 1e9, certRevoked: false, signLimit: 1_000_000, verdict: 0,
});

function verdictByMachine(ctx: Ctx, facts: Parameters<(typeof ISSUE_RULES)[number][1]>[1]): number {
  const [s0] = initialTransition(taxMachine, { ctx, personalized: true });
  return transition(taxMachine, s0, { type: "CHECK_ISSUE", facts })[0].context.verdict;
}
function verdictByRules(ctx: Ctx, facts: Parameters<(typeof ISSUE_RULES)[number][1]>[1]): number {
  for (const [, rule, code] of ISSUE_RULES) if (rule(ctx, facts)) return code;
  return 0;
}

describe("the xstate tax machine", () => {
  it("routes to online, offlineOpen, uploadPending and locked from its context", () => {
    const state = (patch: Partial<Ctx>) => stateCode(initialTransition(taxMachine, { ctx: { ...baseCtx(), ...patch }, personalized: true })[0]);
    expect(state({})).toBe(StateCode.online);
    expect(state({ now: 900 + 301 })).toBe(StateCode.offlineOpen);
    expect(state({ counters: { ...baseCtx().counters, pendingCount: 1 } })).toBe(StateCode.uploadPending);
    expect(state({ clockOk: false })).toBe(StateCode.locked);
    expect(stateCode(initialTransition(taxMachine, { ctx: baseCtx(), personalized: false })[0])).toBe(StateCode.factory);
    expect(lockReason({ ...baseCtx(), now: 900 + 3 * 86_400 + 1 })).toBe(LockReason.TIME);
    expect(lockReason({ ...baseCtx(), counters: { ...baseCtx().counters, offlineCount: 50 } })).toBe(LockReason.COUNT);
    expect(lockReason({ ...baseCtx(), counters: { ...baseCtx().counters, signCount: 1_000_000 } })).toBe(LockReason.KEY);
    expect(lockReason({ ...baseCtx(), certRevoked: true })).toBe(LockReason.CERT);
  });
  it("the machine's guarded CHECK_ISSUE transition and the fast verdict agree on random inputs", () => {
    const facts = fc.record({
      now: fc.integer({ min: 0, max: 400_000 }), clockOk: fc.boolean(), mode: fc.integer({ min: 0, max: 1 }), taxpayerMatch: fc.boolean(),
      typeEnabled: fc.boolean(), stockLeft: fc.integer({ min: 0, max: 3 }), batchCount: fc.integer({ min: 1, max: 200 }),
      grandTotal: fc.integer({ min: 0, max: 2_000_000 }), typeSingleLimit: fc.integer({ min: 0, max: 2_000_000 }),
      red: fc.option(fc.record({ originalExists: fc.boolean(), creditAllowed: fc.boolean() }), { nil: undefined }),
    });
    const ctx = fc.record({
      offlineCount: fc.integer({ min: 0, max: 60 }), pendingCount: fc.integer({ min: 0, max: 3 }), offlineAmountFen: fc.integer({ min: 0, max: 6_000_000 }),
      signCount: fc.constantFrom(0, 999_999, 1_000_000), certRevoked: fc.boolean(), certPresent: fc.boolean(), ratio: fc.integer({ min: 0, max: 1000 }),
    });
    fc.assert(fc.property(ctx, facts, (c, f) => {
      const b = baseCtx();
      const context: Ctx = { ...b, certRevoked: c.certRevoked, certPresent: c.certPresent, limits: { ...b.limits, maxOfflineRatioPermille: c.ratio },
        counters: { ...b.counters, offlineCount: c.offlineCount, pendingCount: c.pendingCount, offlineAmountFen: c.offlineAmountFen, signCount: c.signCount } };
      const facts2 = f.red === undefined ? (({ red: _r, ...rest }) => rest)(f) : f;
      expect(verdictByMachine(context, facts2)).toBe(verdictByRules(context, facts2));
    }), { numRuns: 400 });
  });
  it("on the card: GET LIMITS reports the state through an issue, an upload and a lock", async () => {
    const r = await readyCard(95);
    const status = async () => decodeLayout(OFFLINE_STATUS_LAYOUT, (await call(r.send, cmd(INS.GET_LIMITS, undefined, 256))).subarray(LIMITS_LAYOUT.recordLength));
    expect((await status()).state).toBe(StateCode.online);
    r.clock.advance(3_600_000);
    expect((await status()).state).toBe(StateCode.offlineOpen);
    await issue(r, draft({}, 100));
    expect((await status()).state).toBe(StateCode.uploadPending);
    await issuer.confirmUpload(r.send, await bureau(r), 1);
    expect((await status()).state).toBe(StateCode.online);
    r.clock.advance(4 * 86_400_000);
    const s = await status();
    expect(s.state).toBe(StateCode.locked);
    expect(s.lockReason).toBe(LockReason.TIME);
    expect(E.OFFLINE_EXPIRED).toBeGreaterThan(0);
  });

  it("a machine started when first used answers as one started at power-on (the card starts it lazily)", async () => {
    const [eager, lazy] = [await readyCard(96), await readyCard(96)];
    const answers: string[][] = [[], []];
    for (const [i, r] of [eager, lazy].entries()) {
      r.card.powerOn();
      if (r === eager) expect(r.card.machine).toBeDefined(); // started now, with the power-on context
      await selectApplication(r.send);
      await verifyPin(r.send, PROFILE.userPin);
      r.clock.advance(3_600_000); // time moves between power-on and the first use
      await issue(r, draft({}, 100));
      for (const step of [0, 1]) {
        answers[i]!.push(toHex(await call(r.send, cmd(INS.GET_LIMITS, undefined, 256))));
        r.clock.advance(4 * 86_400_000 * step);
      }
      answers[i]!.push(toHex(await call(r.send, cmd(INS.GET_LIMITS, undefined, 256))));
    }
    expect(answers[1]).toEqual(answers[0]);
    const state = (hex: string) => decodeLayout(OFFLINE_STATUS_LAYOUT, Uint8Array.from(Buffer.from(hex, "hex")).subarray(LIMITS_LAYOUT.recordLength)).state;
    expect(answers[1]!.map(state)).toEqual([StateCode.uploadPending, StateCode.uploadPending, StateCode.locked]);
  });
});
