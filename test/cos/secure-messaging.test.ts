import { describe, expect, it } from "vitest";
import {
  encodeCommand, INS, SW, authCryptogram, issuer, wrapData, CLA_SM, encodeLayout, LIMITS_LAYOUT, getChallenge, E, FACTORY_ISSUER_KEY, type LayoutValues,
} from "../../src/tax/index.ts";
import { CutStore } from "../support/cut-store.ts";
import { readyCard, raw, bureau, PROFILE, swOf, blankCard } from "./helpers.ts";

describe("bureau authentication and secure messaging", () => {
  it("refuses a wrong cryptogram (6988) and a cryptogram without a fresh challenge (6985)", async () => {
    const r = await readyCard();
    const ch = await getChallenge(r.send);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: authCryptogram(FACTORY_ISSUER_KEY, ch) })).sw).toBe(SW.SM_DATA_INCORRECT);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: authCryptogram(r.cardKey, ch) })).sw).toBe(SW.CONDITIONS_NOT_SATISFIED);
  });
  it("the card key replaced the transport key at personalization", async () => {
    const r = await readyCard();
    const { bureauAuthenticate } = await import("../../src/tax/index.ts");
    expect(await swOf(bureauAuthenticate(r.send, FACTORY_ISSUER_KEY))).toBe(E.MAC);
  });
  it("a forged MAC is refused, changes nothing and ends the session; a replay is refused and changes nothing", async () => {
    const store = new CutStore();
    const r = await readyCard(3, store);
    const limits = { ...PROFILE.limits, maxOfflineCount: 7 };
    let apdu: Uint8Array = new Uint8Array(0);
    const before = store.snapshot();
    for (const at of [5, 10, 40, 59, 63]) {
      const s = await bureau(r);
      apdu = s.wrap(INS.SET_LIMITS, 0, 0, encodeLayout(LIMITS_LAYOUT, limits as unknown as LayoutValues));
      const forged = apdu.slice();
      forged[at] = (forged[at] as number) ^ 1;
      expect(raw(r, forged).sw).toBe(SW.SM_DATA_INCORRECT);
      expect(store.snapshot()).toBe(before);
    }
    // the session is gone: even the genuine message is now refused
    expect(raw(r, apdu).sw).toBe(SW.SECURITY_NOT_SATISFIED);
    const s2 = await bureau(r);
    const genuine = s2.wrap(INS.SET_LIMITS, 0, 0, encodeLayout(LIMITS_LAYOUT, limits as unknown as LayoutValues));
    expect(raw(r, genuine).sw).toBe(SW.OK);
    expect(r.card.data.limits?.maxOfflineCount).toBe(7);
    const after = store.snapshot();
    expect(raw(r, genuine).sw).toBe(0x940d); // replay
    expect(store.snapshot()).toBe(after);
    // a message from an old session does not work in a new one
    await bureau(r);
    expect(raw(r, genuine).sw).toBe(SW.SM_DATA_INCORRECT);
  });
  it("a message MACed for one command cannot be replayed as another (header in the MAC)", async () => {
    const r = await readyCard();
    const s = await bureau(r);
    const data = wrapData(s.keys, 1, [CLA_SM, INS.SET_LIMITS, 0, 0], new Uint8Array(40));
    expect(raw(r, encodeCommand({ cla: CLA_SM, ins: INS.SET_TAXPAYER, data })).sw).toBe(SW.SM_DATA_INCORRECT);
  });
  it("factory-only commands are refused after personalization (6985)", async () => {
    const r = await readyCard();
    const s = await bureau(r);
    expect(await swOf(issuer.setClock(r.send, s, 1_800_000_000))).toBe(E.STATE);
    expect(await swOf(issuer.loadTaxKey(r.send, s, new Uint8Array(16), "sm4-cbcmac-sm3-standin-v1"))).toBe(E.STATE);
    expect(await swOf(issuer.setPins(r.send, s, "1111", "2222"))).toBe(E.STATE);
  });
  it("END PERSONALIZATION needs every item; the tax key loads once", async () => {
    const r = blankCard(5);
    const { selectApplication, bureauAuthenticate } = await import("../../src/tax/index.ts");
    await selectApplication(r.send);
    const s = await bureauAuthenticate(r.send, FACTORY_ISSUER_KEY);
    expect(await swOf(issuer.endPersonalization(r.send, s))).toBe(E.STATE);
    await issuer.loadTaxKey(r.send, s, PROFILE.taxKey, PROFILE.taxCodeAlgorithm);
    expect(await swOf(issuer.loadTaxKey(r.send, s, PROFILE.taxKey, PROFILE.taxCodeAlgorithm))).toBe(E.STATE);
    expect(await swOf(issuer.loadTaxKey(r.send, s, PROFILE.taxKey, "no-such-algorithm"))).toBe(E.STATE);
  });
});
