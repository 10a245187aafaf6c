/**
 * Card exports (EXPORT UNUPLOADED batches with issue and void events) and the bureau's
 * secure-messaging answers (sync, confirm), checked with src/tax's card side (unwrapData).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sm2Sign } from "../../src/crypto/index.ts";
import { Rng, VirtualClock } from "../../src/sim/index.ts";
import {
  authCryptogram, decodeLayout, decodeTable, deriveCardKey, deriveSessionKeys, encodeBatch, encodeBatchBody, encodeInvoice, EventKind, INS,
  LIMITS_LAYOUT, parseCommand, PURCHASE_LAYOUT, SM4_STANDIN_TAX_CODE, signedVoidBytes, unwrapData, CLA_SM, type UploadEvent,
} from "../../src/tax/index.ts";
import { startBureau, type Bureau } from "../../src/bureau/index.ts";
import { call, makeInvoice, registerDevice, START, WALL, INVOICE_CODE, DEVICE, TAXPAYER, type Device } from "./fixture.ts";

const MASTER = new Uint8Array(Buffer.from("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "hex"));
const CHALLENGE = "00112233445566778899aabbccddeeff";

let bureau: Bureau;
let clock: VirtualClock;
let device: Device;

beforeAll(async () => {
  clock = new VirtualClock(START);
  bureau = await startBureau({ clock, tlsClock: WALL, rng: new Rng(31), masterKey: MASTER });
  device = registerDevice(bureau, clock, new Rng(32));
});
afterAll(async () => bureau.stop());

function issueEvent(seq: number, number: number, taxKey = device.taxControlKey): UploadEvent {
  const invoice = encodeInvoice(makeInvoice(TAXPAYER, number, clock.now()));
  const taxCode = SM4_STANDIN_TAX_CODE.generate(taxKey, invoice);
  const signature = sm2Sign(device.keyPair.privateKey, new Uint8Array([...invoice, ...Buffer.from(taxCode, "ascii")]), { publicKey: device.keyPair.publicKey });
  return { seq, kind: EventKind.ISSUE, at: Math.floor(clock.now() / 1000), issued: { seq, invoice, taxCode, signature } };
}

function voidEvent(seq: number, number: number): UploadEvent {
  const at = Math.floor(clock.now() / 1000);
  return { seq, kind: EventKind.VOID, at, code: INVOICE_CODE, number, signature: sm2Sign(device.keyPair.privateKey, signedVoidBytes(INVOICE_CODE, number, at)) };
}

function exportBatch(events: UploadEvent[], serial = DEVICE, signer = device.keyPair.privateKey): string {
  const body = encodeBatchBody(serial, events, 0);
  return Buffer.from(encodeBatch(body, sm2Sign(signer, body))).toString("base64");
}

function upload(events: UploadEvent[], extra: Record<string, unknown> = {}) {
  return call(bureau, "/api/v1/upload", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: device.chain, exportBatch: exportBatch(events), ...extra } });
}

/** What the card would do with the bureau's messages: check the cryptogram, unwrap each SM command. */
function unwrapAll(messages: { name: string; apdu: string }[], cardKey: Uint8Array): { name: string; ins: number; plain: Uint8Array }[] {
  const parsed = messages.map((m) => {
    const r = parseCommand(new Uint8Array(Buffer.from(m.apdu, "hex")));
    if (!r.ok) throw new Error(r.reason);
    return { name: m.name, apdu: r.apdu };
  });
  const [auth, ...rest] = parsed;
  expect(auth!.name).toBe("EXTERNAL_AUTHENTICATE");
  const challenge = new Uint8Array(Buffer.from(CHALLENGE, "hex"));
  expect(Buffer.from(auth!.apdu.data).equals(Buffer.from(authCryptogram(cardKey, challenge)))).toBe(true);
  const keys = deriveSessionKeys(cardKey, challenge);
  let counter = 0;
  return rest.map(({ name, apdu }) => {
    expect(apdu.cla).toBe(CLA_SM);
    const out = unwrapData(keys, counter, [apdu.cla, apdu.ins, apdu.p1, apdu.p2], apdu.data);
    counter = out.counter;
    return { name, ins: apdu.ins, plain: out.plain };
  });
}

describe("card export batches", () => {
  it("stores issued invoices, applies a signed void, confirms the events, and answers with CONFIRM UPLOAD", async () => {
    const reply = await upload([issueEvent(1, 1), issueEvent(2, 2), voidEvent(3, 2), issueEvent(4, 3)], { challenge: CHALLENGE });
    expect(reply.status).toBe(200);
    const receipt = reply.json.receipt;
    expect(receipt.accepted.map((a: { invoiceNumber: string }) => a.invoiceNumber)).toEqual(["00000001", "00000002", "00000003"]);
    expect(receipt.voided).toEqual([{ invoiceCode: INVOICE_CODE, invoiceNumber: "00000002" }]);
    expect(receipt.rejected).toEqual([]);
    expect(receipt.confirmThrough).toBe(4);
    expect(bureau.store.invoice(INVOICE_CODE, "00000002")?.voidedAt).toBe(Math.floor(clock.now() / 1000) * 1000);
    expect(bureau.store.invoice(INVOICE_CODE, "00000001")?.voidedAt).toBeUndefined();
    const unwrapped = unwrapAll(reply.json.issuerMessages, deriveCardKey(MASTER, DEVICE));
    expect(unwrapped.map((u) => u.name)).toEqual(["CONFIRM_UPLOAD"]);
    expect(unwrapped[0]!.ins).toBe(INS.CONFIRM_UPLOAD);
    expect(Buffer.from(unwrapped[0]!.plain).readUInt32BE(0)).toBe(4);
  });

  it("re-uploading the export returns the stored receipt and stores nothing", async () => {
    const before = bureau.store.invoiceCount();
    const events = [issueEvent(5, 4)];
    const first = await upload(events);
    const again = await upload(events, { challenge: CHALLENGE });
    expect(again.json.replayed).toBe(true);
    expect(again.json.receiptText).toBe(first.json.receiptText);
    expect(first.json.receipt.confirmThrough).toBe(5);
    expect(bureau.store.invoiceCount()).toBe(before + 1);
    expect(Buffer.from(unwrapAll(again.json.issuerMessages, deriveCardKey(MASTER, DEVICE))[0]!.plain).readUInt32BE(0)).toBe(5);
  });

  it("holds the confirmation back at a refused event or a gap, and accepts the rest", async () => {
    const refused = await upload([issueEvent(6, 6, new Uint8Array(16).fill(9)), issueEvent(7, 7)]);
    expect(refused.json.receipt.rejected.map((r: { code: string }) => r.code)).toEqual(["BAD_TAX_CONTROL_CODE"]);
    expect(refused.json.receipt.accepted.map((a: { invoiceNumber: string }) => a.invoiceNumber)).toEqual(["00000007"]);
    expect(refused.json.receipt.confirmThrough).toBe(5);
    const gap = await upload([issueEvent(9, 9)]);
    expect(gap.json.receipt.confirmThrough).toBe(5);
    expect(bureau.store.device(DEVICE)?.confirmedSeq).toBe(5);
    const unknownVoid = await upload([voidEvent(10, 77)]);
    expect(unknownVoid.json.receipt.rejected.map((r: { code: string }) => r.code)).toEqual(["VOID_UNKNOWN_INVOICE"]);
  });

  it("refuses a forged, foreign or malformed export with no change", async () => {
    const before = { invoices: bureau.store.invoiceCount(), receipts: bureau.store.receiptCount() };
    const other = new Rng(5).bytes(32);
    other[0] = 1;
    const forged = await upload([], { exportBatch: exportBatch([issueEvent(11, 11)], DEVICE, other) });
    expect(forged.status).toBe(403);
    expect(forged.json.code).toBe("BAD_BATCH_SIGNATURE");
    const foreign = await upload([], { exportBatch: exportBatch([issueEvent(11, 11)], "UK9999") });
    expect(foreign.json.code).toBe("EXPORT_DEVICE_MISMATCH");
    const garbage = await upload([], { exportBatch: Buffer.from("nonsense").toString("base64") });
    expect(garbage.status).toBe(400);
    expect(garbage.json.code).toBe("BAD_EXPORT");
    const both = await call(bureau, "/api/v1/upload", { json: { taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: device.chain, exportBatch: exportBatch([issueEvent(11, 11)]), invoices: [device.invoice(11)] } });
    expect(both.json.code).toBe("BAD_REQUEST");
    const badChallenge = await upload([issueEvent(11, 11)], { challenge: "abcd" });
    expect(badChallenge.json.code).toBe("BAD_REQUEST");
    expect({ invoices: bureau.store.invoiceCount(), receipts: bureau.store.receiptCount() }).toEqual(before);
  });
});

describe("sync with a challenge", () => {
  it("answers EXTERNAL AUTHENTICATE, SYNC PURCHASES and SET LIMITS that the card can unwrap", async () => {
    const reply = await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=${DEVICE}&challenge=${CHALLENGE}`);
    expect(reply.status).toBe(200);
    const [purchases, limits] = unwrapAll(reply.json.issuerMessages, deriveCardKey(MASTER, DEVICE));
    expect(purchases!.ins).toBe(INS.SYNC_PURCHASES);
    const table = decodeTable(PURCHASE_LAYOUT, purchases!.plain);
    expect(table[0]).toMatchObject({ typeCode: "02601", invoiceCode: INVOICE_CODE, startNumber: 1, count: 100_000, nextNumber: 1, status: 1, purchasedOn: "20260101" });
    expect(table[1]).toMatchObject({ status: 0 });
    expect(limits!.ins).toBe(INS.SET_LIMITS);
    expect(decodeLayout(LIMITS_LAYOUT, limits!.plain)).toMatchObject({
      offlineAllowed: 1, validDays: 3, validUntil: Math.floor(clock.now() / 1000) + 72 * 3600, maxOfflineCount: 1000, maxOfflineAmountFen: 100_000_000, singleLimitFen: 10_000_000,
    });
    const plain = await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=${DEVICE}`);
    expect(plain.json.issuerMessages).toEqual([]);
    expect((await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=${DEVICE}&challenge=zz`)).json.code).toBe("BAD_REQUEST");
  });

  it("uses a device's registered card key instead of the derived one", async () => {
    const cardKey = "000102030405060708090a0b0c0d0e0f";
    bureau.service.registerDevice({ deviceSerial: "UK0002", taxpayerId: TAXPAYER, taxControlKey: "11".repeat(16), cardKey });
    const reply = await call(bureau, `/api/v1/sync?taxpayerId=${TAXPAYER}&deviceSerial=UK0002&challenge=${CHALLENGE}`);
    expect(unwrapAll(reply.json.issuerMessages, new Uint8Array(Buffer.from(cardKey, "hex"))).map((u) => u.name)).toEqual(["SYNC_PURCHASES", "SET_LIMITS"]);
  });
});
