/**
 * Every one of the 27 error codes, produced through the interface (APDUs via the issuer-side
 * helpers, or the host side for +1/+2). Each case is small; the detailed behaviour is in the
 * other files.
 */
import { describe, expect, it } from "vitest";
import {
  E, TAX_ERRORS, INS, call, TaxError, errorForTransport, encodeCommand, issuer, verifyPin, selectApplication, getChallenge, encodeInvoiceKey, type Send,
} from "../../src/tax/index.ts";
import { ModelStore } from "../../src/flash-store/index.ts";
import { RT, encodeCounters } from "../../src/cos/index.ts";
import { CardMuteError } from "../../src/cos/index.ts";
import { readyCard, issue, draft, cmd, bureau, swOf, PROFILE, blankCard, personalize, login } from "./helpers.ts";

describe("each of the 27 error codes is produced", () => {
  const seen = new Set<number>();
  const expectCode = async (p: Promise<unknown>, code: number) => {
    expect(await swOf(p)).toBe(code);
    seen.add(code);
  };

  it("+1..+13: host side, APDU layer, security", async () => {
    const r = await readyCard(81);
    const dead: Send = async () => { throw new CardMuteError(); };
    const noCard: Send = async () => { throw Object.assign(new Error("no card"), { code: "NO_CARD" }); };
    const viaTransport = (p: Promise<unknown>) => p.then(() => 0, (e) => { throw new TaxError(errorForTransport(e)); });
    await expectCode(viaTransport(call(noCard, cmd(INS.GET_DEVICE_INFO))), E.NOT_FOUND);
    await expectCode(viaTransport(call(dead, cmd(INS.GET_DEVICE_INFO))), E.NOT_FOUND);
    await expectCode(viaTransport(call(async () => { throw new Error("socket reset"); }, cmd(INS.GET_DEVICE_INFO))), E.COMM);
    await expectCode(call(async () => Uint8Array.of(0x90), cmd(INS.GET_DEVICE_INFO)), E.COMM);
    await expectCode(call(r.send, cmd(INS.ISSUE, Uint8Array.of(9, 9, 9), 256)), E.PARAM);
    await expectCode(call(r.send, cmd(INS.VOID, Uint8Array.of(1), 256)), E.LENGTH);
    await expectCode(call(r.send, encodeCommand({ cla: 0x80, ins: INS.GET_DEVICE_INFO, p1: 9, le: 64 })), E.P1P2);
    await expectCode(call(r.send, encodeCommand({ cla: 0x80, ins: 0xee })), E.INS);
    await expectCode(call(r.send, encodeCommand({ cla: 0x40, ins: INS.GET_DEVICE_INFO })), E.CLA);
    await expectCode(verifyPin(r.send, "00000000"), E.PIN_ERROR);
    await expectCode(call(r.send, cmd(INS.GET_TAXPAYER, undefined, 256)), E.NEED_AUTH);
    for (let i = 0; i < 5; i++) await swOf(verifyPin(r.send, "00000000"));
    await expectCode(verifyPin(r.send, PROFILE.userPin), E.PIN_LOCKED);
    const s = await bureau(r);
    await expectCode(issuer.setClock(r.send, s, 1_800_000_000), E.STATE);
    const genuine = s.wrap(INS.SET_LIMITS, 0, 0, new Uint8Array(40));
    await call(r.send, genuine);
    await expectCode(call(r.send, genuine), E.REPLAY);
    const f2 = s.wrap(INS.SET_LIMITS, 0, 0, new Uint8Array(40));
    f2[f2.length - 1] = (f2[f2.length - 1] as number) ^ 1;
    await expectCode(call(r.send, f2), E.MAC);
    await expectCode(call(r.send, cmd(INS.ISSUE, Uint8Array.of(9, 9, 9), 256)), E.NEED_AUTH);
    void getChallenge; void selectApplication;
  });

  it("+14..+27: storage, clock, key, and the tax checks", async () => {
    const full = await readyCard(82, new ModelStore(9_000));
    let sw = 0;
    for (let i = 0; i < 100 && sw === 0; i++) sw = await swOf(issue(full, draft({}, 100)));
    expect(sw).toBe(E.STORAGE_FULL);
    seen.add(sw);

    const r = await readyCard(83);
    await issue(r, draft({}, 100));
    r.clock.set(r.clock.now() - 10_000);
    await expectCode(issue(r), E.CLOCK_INVALID);
    r.clock.advance(20_000);
    r.store.commit([r.card.put(RT.COUNTERS, 0, encodeCounters({ ...r.card.data.counters, signCount: 1_000_000 }))]);
    r.card.powerOn();
    await login(r);
    await expectCode(issue(r), E.KEY_EXPIRED);
    await call(r.send, cmd(INS.GENERATE_KEY_PAIR, undefined, 256));
    await expectCode(issue(r, draft({ mode: 1 })), E.HAVE_NOTRANCE_DATA);
    await expectCode(call(r.send, cmd(INS.READ_INVOICE, encodeInvoiceKey("137001900111", 5), 256)), E.DATA_NOT_EXIST);
    await expectCode(issue(r, draft({ machineNumber: "999999999999" })), E.TAXPAYER_MISMATCH);
    await expectCode(issue(r, draft({ typeCode: "09999" })), E.NO_STOCK);
    await expectCode(issue(r, draft({}, 2_000_000)), E.AMOUNT_LIMIT);
    await expectCode(issue(r, draft({ kind: 1, originalCode: "137001900111", originalNumber: 1001 }, 1_000_000)), E.INVOICE_STATE);
    const s = await bureau(r);
    await issuer.setLimits(r.send, s, { ...PROFILE.limits, maxOfflineAmountFen: 1000 });
    await expectCode(issue(r), E.OFFLINE_AMOUNT);
    await issuer.setLimits(r.send, s, { ...PROFILE.limits, maxOfflineCount: 1 });
    await expectCode(issue(r), E.OFFLINE_COUNT);
    await issuer.setLimits(r.send, s, { ...PROFILE.limits, maxOfflineRatioPermille: 10 });
    await expectCode(issue(r), E.OFFLINE_RATIO);
    await issuer.setLimits(r.send, s, { ...PROFILE.limits, offlineAllowed: 0 });
    await expectCode(issue(r), E.OFFLINE_EXPIRED);

    const noCert = blankCard(84);
    await personalize(noCert, PROFILE, { cert: false });
    await login(noCert);
    await expectCode(issue(noCert), E.BAD_CERT);
  });

  it("covered all 27", () => {
    expect([...seen].sort((a, b) => a - b)).toEqual(TAX_ERRORS.map((e) => e.code));
  });
});
