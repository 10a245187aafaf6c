/**
 * Power cuts during issue, void, red-letter, sync and confirm (RecordStore level: the
 * commit is cut before or after it applies). After re-power the card shows the old state
 * or the new one, its invariants hold and numbers are neither reused nor skipped.
 * NAND-level torn writes are exercised with FlashStore (see flash-power-cut tests).
 */
import { describe, expect, it } from "vitest";
import { INS, call, encodeInvoiceKey, issuer, decodeInvoice, PurchaseStatus } from "../../src/tax/index.ts";
import { CardMuteError, RT } from "../../src/cos/index.ts";
import { CutStore } from "../support/cut-store.ts";
import { readyCard, issue, draft, cmd, bureau, login, PROFILE, type Rig } from "./helpers.ts";

function invariants(r: Rig): void {
  const c = r.card.data.counters;
  expect(r.store.ids(RT.INVOICE).length).toBe(c.invoiceSeq);
  expect(r.store.ids(RT.EVENT).length).toBe(c.pendingCount);
  expect(Math.max(0, ...r.store.ids(RT.EVENT))).toBeLessThanOrEqual(c.eventSeq);
  const issuedFromBatch = r.card.data.purchases!.filter((p) => p.status !== PurchaseStatus.EMPTY).reduce((n, p) => n + p.nextNumber - p.startNumber, 0);
  expect(issuedFromBatch).toBe(c.invoiceSeq);
}

type Op = (r: Rig) => Promise<unknown>;

const OPS: Array<[string, Op]> = [
  ["issue", (r) => issue(r, draft({}, 100))],
  ["void", (r) => call(r.send, cmd(INS.VOID, encodeInvoiceKey("137001900111", 1001), 256))],
  ["red", (r) => issue(r, draft({ kind: 1, originalCode: "137001900111", originalNumber: 1002 }, 50))],
  ["sync", async (r) => issuer.syncPurchases(r.send, await bureau(r), [...PROFILE.purchases, { typeCode: "02601", invoiceCode: "137001900333", startNumber: 1, count: 10, nextNumber: 1, purchasedOn: "20260101", status: 1 }])],
  ["confirm", async (r) => issuer.confirmUpload(r.send, await bureau(r), 2)],
];

async function prepared(seed: number): Promise<{ r: Rig; store: CutStore }> {
  const store = new CutStore();
  const r = await readyCard(seed, store);
  await issue(r, draft({}, 100));
  await issue(r, draft({}, 100));
  return { r, store };
}

describe("power cuts leave the old or the new state", () => {
  for (const [name, op] of OPS) {
    for (const applied of [false, true]) {
      it(`${name}: cut ${applied ? "after" : "before"} the commit applies`, async () => {
        const { r, store } = await prepared(50);
        const before = store.snapshot();
        // bureau ops authenticate first (no commit), so the first commit is the operation's
        store.cutAt(1, applied);
        await expect(op(r)).rejects.toThrow(CardMuteError);
        expect(r.card.isMute).toBe(true);
        store.restore();
        r.card.powerOn();
        if (!applied) expect(store.snapshot()).toBe(before);
        else expect(store.snapshot()).not.toBe(before);
        await login(r);
        invariants(r);
        // the card works on: the next invoice number follows without a gap
        const next = decodeInvoice((await issue(r, draft({}, 100))).invoice).invoiceNumber;
        expect(next).toBe(1001 + r.card.data.counters.invoiceSeq - 1);
        invariants(r);
      });
    }
  }
});
