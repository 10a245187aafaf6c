import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeCommand, encodeInvoice, encodeLayout, INS, LIMITS_LAYOUT, splitResponse, type LayoutValues } from "../../src/tax/index.ts";
import { CutStore } from "../support/cut-store.ts";
import { readyCard, draft, bureau, PROFILE, type Rig } from "./helpers.ts";

const RUNS = process.env.UKEYSIM_LONG ? 20_000 : 600;
const INS_POOL = [...Object.values(INS), 0x00, 0xff, 0x10];

/** Send and check: never throws, always a status word, and a refusal changes nothing in flash. */
function probe(r: Rig, store: CutStore, apdu: Uint8Array): number {
  const before = store.snapshot();
  const out = r.card.process(apdu);
  expect(out.length).toBeGreaterThanOrEqual(2);
  const { sw } = splitResponse(out);
  const accepted = sw === 0x9000 || (sw & 0xff00) === 0x6100 || (sw & 0xfff0) === 0x63c0;
  if (!accepted) expect(store.snapshot()).toBe(before);
  return sw;
}

describe("random and mutated APDUs (fast-check)", () => {
  it("random APDUs never crash the card and a refused one changes nothing", async () => {
    const store = new CutStore();
    const r = await readyCard(41, store);
    const apdu = fc.record({
      cla: fc.constantFrom(0x00, 0x80, 0x84, 0x90, 0x0c, 0xff, 0x81),
      ins: fc.constantFrom(...INS_POOL),
      p1: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
      p2: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
      data: fc.uint8Array({ maxLength: 300 }),
      le: fc.integer({ min: 0, max: 600 }),
    });
    fc.assert(fc.property(fc.oneof(apdu.map((a) => encodeCommand(a)), fc.uint8Array({ maxLength: 40 })), (bytes) => {
      probe(r, store, bytes);
    }), { numRuns: RUNS });
  });
  it("mutated valid issue and bureau commands never crash and never half-apply", async () => {
    const store = new CutStore();
    const r = await readyCard(42, store);
    const issueApdu = encodeCommand({ cla: 0x80, ins: INS.ISSUE, data: encodeInvoice(draft({}, 100)), le: 256 });
    const s = await bureau(r);
    const limits = encodeLayout(LIMITS_LAYOUT, PROFILE.limits as unknown as LayoutValues);
    fc.assert(fc.property(fc.nat(issueApdu.length - 1), fc.integer({ min: 1, max: 255 }), fc.boolean(), (at, x, sm) => {
      const base = sm ? s.wrap(INS.SET_LIMITS, 0, 0, limits) : issueApdu;
      const m = base.slice();
      const i = at % m.length;
      m[i] = (m[i] as number) ^ x;
      const seqBefore = r.card.data.counters.invoiceSeq;
      const sw = probe(r, store, m);
      // a mutated CLA or INS may make another valid command (e.g. SIGN, or a chained part)
      if (sw === 0x9000 && !sm && i > 1) expect(r.card.data.counters.invoiceSeq).toBe(seqBefore + 1);
    }), { numRuns: RUNS });
  });
});
