/**
 * Power cuts at every NAND operation of issue, void, red-letter, sync and confirm, on the
 * real FlashStore: the cut tears the operation in progress (a seed-chosen subset of its
 * bits) and the card goes mute. After re-power and re-mount the card shows the old state
 * or the new one, never a mix, and invoice numbers are neither reused nor skipped.
 */
import { describe, expect, it } from "vitest";
import { INS, call, encodeInvoiceKey, issuer, decodeInvoice, decodeStored, PurchaseStatus } from "../../src/tax/index.ts";
import { CardMuteError, RT } from "../../src/cos/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { readyFlashCard, issue, draft, cmd, bureau, login, PROFILE, type FlashRig } from "./helpers.ts";

const LONG = !!process.env.UKEYSIM_LONG;
/** Invoices issued before the campaign: targets for void and confirm. */
const PREPARED = 40;

function invariants(r: FlashRig): void {
  const c = r.card.data.counters;
  const ids = r.store.ids(RT.INVOICE);
  expect(ids.length).toBe(c.invoiceSeq);
  expect(r.store.ids(RT.EVENT).length).toBe(c.pendingCount);
  const numbers = ids.map((id) => decodeInvoice(decodeStored(r.card.read(RT.INVOICE, id)!).issued.invoice)).filter((i) => i.invoiceCode === "137001900111").map((i) => i.invoiceNumber).sort((a, b) => a - b);
  expect(numbers).toEqual(numbers.map((_, i) => 1001 + i)); // contiguous: none reused, none skipped
  const batch = r.card.data.purchases!.find((p) => p.invoiceCode === "137001900111")!;
  expect(batch.nextNumber).toBe(1001 + numbers.length);
  void PurchaseStatus;
}

/** Room for every success of a campaign: a big batch and loose offline limits. */
const BIG = {
  ...PROFILE,
  purchases: [{ ...PROFILE.purchases[0]!, count: 5000 }, PROFILE.purchases[1]!],
  limits: { ...PROFILE.limits, maxOfflineCount: 10_000, maxOfflineAmountFen: 1e12 },
};

type Op = { name: string; run: (r: FlashRig, k: number) => Promise<unknown>; mark: (r: FlashRig) => number };

const OPS: Op[] = [
  { name: "issue", run: (r) => issue(r, draft({}, 100)), mark: (r) => r.card.data.counters.invoiceSeq },
  {
    name: "void",
    run: (r) => call(r.send, cmd(INS.VOID, encodeInvoiceKey("137001900111", 1001 + r.card.data.counters.eventSeq - PREPARED), 256)),
    mark: (r) => r.card.data.counters.eventSeq,
  },
  { name: "red", run: (r) => issue(r, draft({ kind: 1, originalCode: "137001900111", originalNumber: 1001 }, 1, 0)), mark: (r) => r.card.data.counters.invoiceSeq },
  {
    name: "sync",
    run: async (r, k) => issuer.syncPurchases(r.send, await bureau(r), [...BIG.purchases, { typeCode: "02601", invoiceCode: String(137001900400 + k), startNumber: 1, count: 10, nextNumber: 1, purchasedOn: "20260101", status: 1 }]),
    mark: (r) => Number(r.card.data.purchases![2]!.invoiceCode || 0),
  },
  { name: "confirm", run: async (r) => issuer.confirmUpload(r.send, await bureau(r), r.card.data.counters.confirmedThrough + 1), mark: (r) => r.card.data.counters.confirmedThrough },
];

describe("power cuts at every NAND operation (FlashStore)", () => {
  for (const op of OPS) {
    it(`${op.name}: old or new state after a cut at each operation`, async () => {
      const r = await readyFlashCard(90, BIG);
      for (let i = 0; i < PREPARED; i++) await issue(r, draft({}, 100));
      const rng = new Rng(91);
      let cuts = 0;
      const maxK = LONG ? 400 : 120;
      for (let k = 0; k < maxK; k++) {
        const before = op.mark(r);
        const start = r.chip.opCount;
        r.chip.armPowerCut(start + k, rng.fork(`cut-${k}`));
        let muted = false;
        try {
          await op.run(r, k);
        } catch (e) {
          expect(e).toBeInstanceOf(CardMuteError);
          muted = true;
        }
        r.chip.disarmPowerCut();
        if (!muted) {
          // no cut: the armed operation was a read (reads are not torn) or lay beyond the end
          expect(op.mark(r)).not.toBe(before);
          invariants(r);
          if (k >= r.chip.opCount - start) break; // every operation of the command was tried
          continue;
        }
        cuts++;
        r.card.powerOn();
        const after = op.mark(r);
        const applied = after !== before;
        await login(r);
        invariants(r);
        if (applied && op.name === "issue") expect(after).toBe(before + 1);
      }
      expect(cuts).toBeGreaterThan(1); // the command programmed pages, and each was cut
      invariants(r);
    });
  }
});

describe("PIN tearing on the FlashStore", () => {
  it("a cut at any NAND operation of a wrong VERIFY never gives a try back", async () => {
    const r = await readyFlashCard(92);
    const rng = new Rng(93);
    const verifyWrong = () => call(r.send, new Uint8Array([0, 0x20, 0, 1, 8, ...new TextEncoder().encode("00000000")]));
    let cuts = 0;
    for (let k = 0; k < 40; k++) {
      const before = r.card.data.pins.userTries;
      if (before <= 1) {
        const { encodeCommand } = await import("../../src/tax/index.ts");
        const so = new TextEncoder().encode(PROFILE.soPin);
        await call(r.send, encodeCommand({ cla: 0, ins: INS.UNBLOCK_PIN, p1: 0, p2: 1, data: Uint8Array.of(so.length, ...so, ...new TextEncoder().encode(PROFILE.userPin)) }));
        continue;
      }
      const start = r.chip.opCount;
      r.chip.armPowerCut(start + (k % 8), rng.fork(`pin-${k}`));
      let muted = false;
      try {
        await verifyWrong();
      } catch (e) {
        muted = e instanceof CardMuteError;
        if (!muted) expect((e as { code: number }).code).toBeGreaterThan(0); // 63Cx: answered
      }
      r.chip.disarmPowerCut();
      if (muted) {
        cuts++;
        r.card.powerOn();
      }
      const after = r.card.data.pins.userTries;
      expect(after).toBeLessThanOrEqual(before); // never a try back
      if (!muted) expect(after).toBe(before - 1); // an answered wrong PIN always costs one
      if (muted) {
        // log in again (a right PIN restores the count), then check nothing but the count changed
        await login(r);
      }
    }
    expect(cuts).toBeGreaterThan(3);
  });
});

describe("re-power on the FlashStore", () => {
  it("unmounts the old store (its index memory goes to the new mount) and the card reads on", async () => {
    const r = await readyFlashCard(94);
    await issue(r, draft({}, 100));
    const old = r.flash.store();
    const ids = old.ids(RT.INVOICE);
    r.chip.armPowerCut(r.chip.opCount, new Rng(95)); // the next NAND operation is cut: the card goes mute
    await expect(issue(r, draft({}, 200))).rejects.toBeInstanceOf(CardMuteError);
    r.chip.disarmPowerCut();
    r.card.powerOn();
    expect(r.flash.store()).not.toBe(old);
    expect(() => old.ids(RT.INVOICE)).toThrow(/unmounted/);
    expect(r.store.ids(RT.INVOICE)).toEqual(ids);
    await login(r);
    invariants(r);
  });
});
