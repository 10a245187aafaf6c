import { describe, expect, it } from "vitest";
import { sm2Verify } from "../../src/crypto/index.ts";
import {
  E, INS, call, encodeInvoiceKey, decodeStored, decodeVoidReceipt, signedVoidBytes, decodeBatch, EventKind, issuer, decodeInvoice, SW,
  decodeLayout, OFFLINE_STATUS_LAYOUT, LIMITS_LAYOUT, ByteReader,
} from "../../src/tax/index.ts";
import { ModelStore } from "../../src/flash-store/index.ts";
import { RT, StateCode, MAX_CONFIRM_PER_TX } from "../../src/cos/index.ts";
import { readyCard, issue, draft, cmd, swOf, bureau, raw, type Rig } from "./helpers.ts";

const CODE = "137001900111";
const key = (n: number) => encodeInvoiceKey(CODE, n);
const voidInv = (r: Rig, n: number) => call(r.send, cmd(INS.VOID, key(n), 256));
const readInv = async (r: Rig, n: number) => decodeStored(await call(r.send, cmd(INS.READ_INVOICE, key(n), 65536)));
const red = (orig: number, amountFen: number) => draft({ kind: 1, originalCode: CODE, originalNumber: orig }, amountFen);
const exportBatch = async (r: Rig, from = 0) => decodeBatch(await call(r.send, cmd(INS.EXPORT_UNUPLOADED, Uint8Array.of(0, 0, 0, from), 65536)));
const status = async (r: Rig) => decodeLayout(OFFLINE_STATUS_LAYOUT, (await call(r.send, cmd(INS.GET_LIMITS, undefined, 256))).subarray(LIMITS_LAYOUT.recordLength));
async function confirm(r: Rig, through: number): Promise<number> {
  const s = await bureau(r);
  return new ByteReader(await issuer.confirmUpload(r.send, s, through)).u32();
}

describe("void", () => {
  it("voids once with a signed receipt; a second void or a missing invoice is refused", async () => {
    const r = await readyCard(31);
    await issue(r);
    const receipt = decodeVoidReceipt(await voidInv(r, 1001));
    const pub = await call(r.send, cmd(INS.EXPORT_PUBLIC_KEY, undefined, 65));
    expect(sm2Verify(pub, signedVoidBytes(CODE, 1001, receipt.voidedAt), receipt.signature)).toBe(true);
    expect((await readInv(r, 1001)).state).toBe(1);
    expect(await swOf(voidInv(r, 1001))).toBe(E.INVOICE_STATE);
    expect(await swOf(voidInv(r, 4242))).toBe(E.DATA_NOT_EXIST);
    expect(await swOf(readInv(r, 4242))).toBe(E.DATA_NOT_EXIST);
    expect(await swOf(call(r.send, cmd(INS.VOID, Uint8Array.of(1, 2), 256)))).toBe(E.LENGTH);
  });
});

describe("red-letter", () => {
  it("credits at most the original's remaining amount; never a voided or a red invoice", async () => {
    const r = await readyCard(32);
    await issue(r, draft({}, 10_000)); // grand 11,300
    const a = await issue(r, red(1001, 5_000)); // 5,650
    expect(decodeInvoice(a.invoice).originalNumber).toBe(1001);
    expect((await readInv(r, 1001)).creditedFen).toBe(5_650);
    expect(await swOf(issue(r, red(1001, 5_001)))).toBe(E.INVOICE_STATE); // 5,651 > 5,650 left
    await issue(r, red(1001, 5_000)); // exactly the rest
    expect(await swOf(issue(r, red(1001, 1)))).toBe(E.INVOICE_STATE);
    expect(await swOf(voidInv(r, 1001))).toBe(E.INVOICE_STATE); // credited: cannot void
    expect(await swOf(issue(r, red(1002, 1)))).toBe(E.INVOICE_STATE); // a red invoice is not credited
    expect(await swOf(issue(r, red(9999, 1)))).toBe(E.DATA_NOT_EXIST);
    await issue(r, draft({}, 100)); // 1004
    await voidInv(r, 1004);
    expect(await swOf(issue(r, red(1004, 1)))).toBe(E.INVOICE_STATE);
    // voiding a red-letter invoice gives its credit back to the original
    await voidInv(r, 1003); // the second red (5,650)
    expect((await readInv(r, 1001)).creditedFen).toBe(5_650);
    expect(await swOf(issue(r, red(1001, 5_000)))).toBe(0);
    expect((await readInv(r, 1001)).creditedFen).toBe(11_300);
  });
});

describe("upload: export, confirm, rollover", () => {
  it("exports pending events as a batch the device key signed, and confirm clears them", async () => {
    const r = await readyCard(33);
    for (let i = 0; i < 3; i++) await issue(r, draft({}, 100));
    await voidInv(r, 1002);
    const b = await exportBatch(r);
    expect(b.serial).toBe(r.card.serial);
    expect(b.events.map((e) => e.kind)).toEqual([EventKind.ISSUE, EventKind.ISSUE, EventKind.ISSUE, EventKind.VOID]);
    const pub = await call(r.send, cmd(INS.EXPORT_PUBLIC_KEY, undefined, 65));
    expect(sm2Verify(pub, b.body, b.signature)).toBe(true);
    expect((await status(r)).pendingCount).toBe(4);
    expect((await status(r)).state).toBe(StateCode.uploadPending);
    expect(await swOf(issue(r, draft({ mode: 1 }, 100)))).toBe(E.HAVE_NOTRANCE_DATA);
    expect(await confirm(r, 2)).toBe(0);
    expect((await status(r)).pendingCount).toBe(2);
    expect((await exportBatch(r)).events.map((e) => e.seq)).toEqual([3, 4]);
    expect(await confirm(r, 4)).toBe(0);
    const st = await status(r);
    expect(st.pendingCount).toBe(0);
    expect(st.offlineCount).toBe(0);
    expect(st.state).toBe(StateCode.online);
    expect(await swOf(exportBatch(r))).toBe(E.DATA_NOT_EXIST);
    expect(r.store.isReclaimable(RT.INVOICE, 1)).toBe(true);
    expect(r.store.isReclaimable(RT.INVOICE, 2)).toBe(true); // voided, and the void is confirmed
    expect((await readInv(r, 1001)).uploaded).toBe(1);
    expect(await swOf(issue(r, draft({ mode: 1 }, 100)))).toBe(0); // online issuing resumes
    expect(await swOf(confirm(r, 99))).toBe(E.PARAM);
    expect(await confirm(r, 4)).toBe(0); // idempotent
  });
  it("a void after upload makes the invoice pending again until its void is confirmed", async () => {
    const r = await readyCard(34);
    await issue(r, draft({}, 100));
    await confirm(r, 1);
    expect(r.store.isReclaimable(RT.INVOICE, 1)).toBe(true);
    await voidInv(r, 1001);
    expect(r.store.isReclaimable(RT.INVOICE, 1)).toBe(false);
    await confirm(r, 2);
    expect(r.store.isReclaimable(RT.INVOICE, 1)).toBe(true);
  });
  it("confirms at most MAX_CONFIRM_PER_TX events per command and reports the rest", async () => {
    const r = await readyCard(35);
    for (let i = 0; i < MAX_CONFIRM_PER_TX + 3; i++) await issue(r, draft({}, 100));
    expect(await confirm(r, MAX_CONFIRM_PER_TX + 3)).toBe(3);
    expect(await confirm(r, MAX_CONFIRM_PER_TX + 3)).toBe(0);
    expect(r.card.data.counters.pendingCount).toBe(0);
  });
  it("rollover reclaims only confirmed invoices; with nothing reclaimable the store is full (6A84) and nothing changes", async () => {
    const r = await readyCard(36, new ModelStore(16_000));
    let issued = 0;
    for (;;) {
      const sw = await swOf(issue(r, draft({}, 100)));
      if (sw !== 0) {
        expect(sw).toBe(E.STORAGE_FULL);
        break;
      }
      issued++;
    }
    expect(issued).toBeGreaterThan(5);
    const seqBefore = r.card.data.counters.invoiceSeq;
    const nextBefore = r.card.data.purchases![0]!.nextNumber;
    expect(nextBefore).toBe(1001 + issued); // the refused issue consumed no number
    expect(raw(r, cmd(INS.GET_DEVICE_INFO, undefined, 64)).sw).toBe(SW.OK);
    // confirm everything; now rollover may reclaim the oldest confirmed invoices
    expect(await issuer.confirmAll(r.send, await bureau(r), r.card.data.counters.eventSeq)).toBeGreaterThan(1);
    for (let i = 0; i < 5; i++) expect(await swOf(issue(r, draft({}, 100)))).toBe(0);
    expect(r.store.stats().reclaimedRecords).toBeGreaterThan(0);
    expect(r.card.data.counters.invoiceSeq).toBe(seqBefore + 5);
    expect(await swOf(readInv(r, 1001))).toBe(E.DATA_NOT_EXIST); // the oldest, reclaimed
    expect((await readInv(r, 1001 + issued + 4)).state).toBe(0);
  });
});
