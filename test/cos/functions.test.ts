/** Every one of the 16 tax-control functions, by APDU, and what it returns. */
import { describe, expect, it } from "vitest";
import {
  TAX_FUNCTIONS, INS, call, decodeLayout, decodeTable, TAXPAYER_LAYOUT, INVOICE_TYPE_LAYOUT, PURCHASE_LAYOUT, LIMITS_LAYOUT, DEVICE_INFO_LAYOUT,
  SECURE_TIME_LAYOUT, OFFLINE_STATUS_LAYOUT, issuer, E, KEY_USAGE_LIMIT, beijingText, encodeInvoiceKey, decodeStored, decodeBatch, ByteReader, SW,
} from "../../src/tax/index.ts";
import { ClockState } from "../../src/secure-clock/index.ts";
import { readyCard, blankCard, cmd, PROFILE, ISSUE_TIME, swOf, bureau, issue, draft, raw } from "./helpers.ts";

describe("the 16 tax-control functions", () => {
  it("covers every function in this file", () => {
    const used = new Set([INS.GET_TAXPAYER, INS.SET_TAXPAYER, INS.GET_INVOICE_TYPES, INS.SET_INVOICE_TYPES, INS.GET_PURCHASES, INS.SYNC_PURCHASES, INS.GET_LIMITS, INS.SET_LIMITS,
      INS.ISSUE, INS.VOID, INS.RED, INS.READ_INVOICE, INS.EXPORT_UNUPLOADED, INS.CONFIRM_UPLOAD, INS.GET_SECURE_TIME, INS.GET_DEVICE_INFO]);
    expect(TAX_FUNCTIONS.every((f) => used.has(f.ins as never))).toBe(true);
  });
  it("reads (UKEY_GetNsrjxxqy, GetPzxx, GetLgxx, GetLxxz) return what the bureau wrote, with the user PIN only", async () => {
    const r = await readyCard(61);
    expect(decodeLayout(TAXPAYER_LAYOUT, await call(r.send, cmd(INS.GET_TAXPAYER, undefined, 256)))).toEqual(PROFILE.taxpayer);
    const types = decodeTable(INVOICE_TYPE_LAYOUT, await call(r.send, cmd(INS.GET_INVOICE_TYPES, undefined, 65536)));
    expect(types.slice(0, 2)).toEqual(PROFILE.invoiceTypes);
    expect(types[2]).toMatchObject({ typeCode: "", status: 0 });
    const purchases = decodeTable(PURCHASE_LAYOUT, await call(r.send, cmd(INS.GET_PURCHASES, undefined, 65536)));
    expect(purchases.slice(0, 2)).toEqual(PROFILE.purchases);
    const ls = await call(r.send, cmd(INS.GET_LIMITS, undefined, 256));
    expect(ls.length).toBe(LIMITS_LAYOUT.recordLength + OFFLINE_STATUS_LAYOUT.recordLength);
    expect(decodeLayout(LIMITS_LAYOUT, ls.subarray(0, 40))).toEqual(PROFILE.limits);
    await call(r.send, cmd(INS.CLEAR_SECURITY_STATE));
    for (const ins of [INS.GET_TAXPAYER, INS.GET_INVOICE_TYPES, INS.GET_PURCHASES, INS.GET_LIMITS, INS.READ_INVOICE, INS.EXPORT_UNUPLOADED]) {
      expect(await swOf(call(r.send, cmd(ins, ins === INS.READ_INVOICE ? new Uint8Array(16) : ins === INS.EXPORT_UNUPLOADED ? new Uint8Array(4) : undefined, 256)))).toBe(E.NEED_AUTH);
    }
  });
  it("reads on a blank card find nothing (+19 requested data does not exist)", async () => {
    const r = blankCard(62);
    const { selectApplication, bureauAuthenticate, FACTORY_ISSUER_KEY, verifyPin } = await import("../../src/tax/index.ts");
    await selectApplication(r.send);
    const s = await bureauAuthenticate(r.send, FACTORY_ISSUER_KEY);
    await issuer.setPins(r.send, s, "1234", "5678");
    await verifyPin(r.send, "1234");
    for (const ins of [INS.GET_TAXPAYER, INS.GET_INVOICE_TYPES, INS.GET_PURCHASES, INS.GET_LIMITS]) expect(await swOf(call(r.send, cmd(ins, undefined, 256)))).toBe(E.DATA_NOT_EXIST);
    expect(await swOf(call(r.send, cmd(INS.EXPORT_PUBLIC_KEY, undefined, 65)))).toBe(E.DATA_NOT_EXIST);
    expect(await swOf(call(r.send, cmd(INS.READ_CERT, undefined, 256)))).toBe(E.DATA_NOT_EXIST);
    expect(await swOf(issue(r))).toBe(E.STATE); // not personalized
  });
  it("bureau writes (SetNsrjxxqy, SetPzxx, SyncLgxx, SetLxxz) validate, apply and restart the offline window", async () => {
    const r = await readyCard(63);
    r.clock.advance(86_400_000);
    const s = await bureau(r);
    await issuer.setTaxpayer(r.send, s, { ...PROFILE.taxpayer, taxpayerName: "新名称" });
    expect(r.card.data.taxpayer!.taxpayerName).toBe("新名称");
    expect(r.card.data.counters.lastOnlineAt).toBe(ISSUE_TIME + 86_400);
    await issuer.setInvoiceTypes(r.send, s, [{ ...PROFILE.invoiceTypes[0]!, status: 2 }]);
    expect(await swOf(issue(r))).toBe(E.NO_STOCK); // suspended type
    await call(r.send, cmd(INS.CLEAR_SECURITY_STATE));
    const s2 = await bureau(r);
    expect(await swOf(issuer.setInvoiceTypes(r.send, s2, PROFILE.invoiceTypes))).toBe(E.NEED_AUTH); // needs the PIN too
    // sync never moves a known batch back, and refuses overlapping batches
    const { verifyPin } = await import("../../src/tax/index.ts");
    await verifyPin(r.send, PROFILE.userPin);
    await issuer.setInvoiceTypes(r.send, s2, PROFILE.invoiceTypes);
    await issue(r);
    await issuer.syncPurchases(r.send, s2, PROFILE.purchases);
    expect(r.card.data.purchases![0]!.nextNumber).toBe(1002);
    expect(await swOf(issuer.syncPurchases(r.send, s2, [...PROFILE.purchases, { ...PROFILE.purchases[0]!, startNumber: 1050 }]))).toBe(E.PARAM);
    expect(await swOf(issuer.setLimits(r.send, s2, { ...PROFILE.limits, maxOfflineRatioPermille: 1001 }))).toBe(E.PARAM);
    expect(await swOf(issuer.setTaxpayer(r.send, s2, { ...PROFILE.taxpayer, certStatus: 7 }))).toBe(E.PARAM);
  });
  it("UKEY_GetAqsz reads the secure time; UKEY_GetSbxx the device and health information", async () => {
    const r = await readyCard(64);
    r.clock.advance(5000);
    const t = decodeLayout(SECURE_TIME_LAYOUT, await call(r.send, cmd(INS.GET_SECURE_TIME, undefined, 256)));
    expect(t).toEqual({ seconds: ISSUE_TIME + 5, text: beijingText(ISSUE_TIME + 5), clockState: ClockState.RUNNING });
    expect(t.text).toBe("20260101080005");
    await issue(r);
    const d = decodeLayout(DEVICE_INFO_LAYOUT, await call(r.send, cmd(INS.GET_DEVICE_INFO, undefined, 256)));
    expect(d).toMatchObject({ serialNumber: "UK00000000000001", lifeCycle: 1, signCount: 1, signLimit: KEY_USAGE_LIMIT, userPinTries: 6, soPinTries: 10, clockState: 1, invoicesStored: 1 });
    expect(d.batteryDaysLeft).toBeGreaterThan(3 * 365);
  });
  it("UKEY_Kjfp / Zffp / Chfp / Dqfp / DcWscsj / QrScjg round trip", async () => {
    const r = await readyCard(65);
    await issue(r);
    await issue(r, draft({ kind: 1, originalCode: "137001900111", originalNumber: 1001 }, 100));
    const stored = decodeStored(await call(r.send, cmd(INS.READ_INVOICE, encodeInvoiceKey("137001900111", 1001), 65536)));
    expect(stored.creditedFen).toBe(113);
    const batch = decodeBatch(await call(r.send, cmd(INS.EXPORT_UNUPLOADED, new Uint8Array(4), 65536)));
    expect(batch.events).toHaveLength(2);
    expect(new ByteReader(await issuer.confirmUpload(r.send, await bureau(r), 2)).u32()).toBe(0);
    expect(r.card.data.counters.pendingCount).toBe(0);
    expect(raw(r, cmd(INS.GET_SECURE_TIME, Uint8Array.of(1))).sw).toBe(SW.WRONG_LENGTH);
  });
});
