import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeCommand, INS, SW, PIN_MAX_TRIES, SO_PIN_MAX_TRIES, TAX_AID } from "../../src/tax/index.ts";
import { CardMuteError } from "../../src/cos/index.ts";
import { CutStore } from "../support/cut-store.ts";
import { readyCard, raw, PROFILE, type Rig } from "./helpers.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const verify = (pin: string, ref = 1) => encodeCommand({ cla: 0, ins: INS.VERIFY, p1: 0, p2: ref, data: enc(pin) });
const tries = (ref = 1) => encodeCommand({ cla: 0, ins: INS.VERIFY, p1: 0, p2: ref });
const lp = (a: string, b: string) => Uint8Array.of(enc(a).length, ...enc(a), ...enc(b));
const select = (r: Rig) => raw(r, encodeCommand({ cla: 0, ins: INS.SELECT, p1: 4, p2: 0, data: TAX_AID }));

describe("PINs", () => {
  it("counts wrong PINs down (63Cx), locks at zero (6983) and a right PIN resets the count", async () => {
    const r = await readyCard();
    expect(raw(r, verify("00000000")).sw).toBe(0x63c0 | (PIN_MAX_TRIES - 1));
    expect(raw(r, tries()).sw).toBe(0x63c0 | (PIN_MAX_TRIES - 1)); // a wrong PIN also drops the earlier verification
    select(r);
    expect(raw(r, tries()).sw).toBe(0x63c0 | (PIN_MAX_TRIES - 1));
    expect(raw(r, verify(PROFILE.userPin)).sw).toBe(SW.OK);
    select(r);
    expect(raw(r, tries()).sw).toBe(0x63c0 | PIN_MAX_TRIES);
    for (let i = PIN_MAX_TRIES - 1; i >= 0; i--) expect(raw(r, verify("99999999")).sw).toBe(0x63c0 | i);
    expect(raw(r, verify(PROFILE.userPin)).sw).toBe(SW.AUTH_METHOD_BLOCKED);
    expect(raw(r, tries()).sw).toBe(SW.AUTH_METHOD_BLOCKED);
    // unblock with the SO PIN and a new user PIN
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.UNBLOCK_PIN, p1: 0, p2: 1, data: lp(PROFILE.soPin, "24682468") })).sw).toBe(SW.OK);
    expect(raw(r, verify(PROFILE.userPin)).sw).toBe(0x63c0 | (PIN_MAX_TRIES - 1));
    expect(raw(r, verify("24682468")).sw).toBe(SW.OK);
  });
  it("changes a PIN only with the old one, and validates lengths without spending a try", async () => {
    const r = await readyCard();
    const change = (data: Uint8Array) => raw(r, encodeCommand({ cla: 0, ins: INS.CHANGE_PIN, p1: 0, p2: 1, data })).sw;
    expect(change(lp(PROFILE.userPin, "12"))).toBe(SW.WRONG_LENGTH);
    expect(change(Uint8Array.of(40, 1, 2))).toBe(SW.WRONG_DATA);
    expect(r.card.data.pins.userTries).toBe(PIN_MAX_TRIES);
    expect(change(lp("11111111", "13572468"))).toBe(0x63c0 | (PIN_MAX_TRIES - 1));
    expect(change(lp(PROFILE.userPin, "13572468"))).toBe(SW.OK);
    select(r);
    expect(raw(r, verify(PROFILE.userPin)).sw & 0xfff0).toBe(0x63c0);
    expect(raw(r, verify("13572468")).sw).toBe(SW.OK);
    expect(raw(r, verify("12")).sw).toBe(SW.WRONG_LENGTH);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.VERIFY, p1: 0, p2: 3, data: enc("1234") })).sw).toBe(SW.WRONG_P1P2);
  });
  it("locks the SO PIN after its own count", async () => {
    const r = await readyCard();
    for (let i = SO_PIN_MAX_TRIES - 1; i >= 0; i--) expect(raw(r, encodeCommand({ cla: 0, ins: INS.UNBLOCK_PIN, p1: 0, p2: 1, data: lp("00000000", "24682468") })).sw).toBe(0x63c0 | i);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.UNBLOCK_PIN, p1: 0, p2: 1, data: lp(PROFILE.soPin, "24682468") })).sw).toBe(SW.AUTH_METHOD_BLOCKED);
  });
  it("brute force under power cuts never gets a try back (tearing)", async () => {
    const store = new CutStore();
    const r = await readyCard(7, store);
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 2 }), fc.boolean()), { minLength: 1, maxLength: 12 }), async (attempts) => {
      let left = r.card.data.pins.userTries;
      for (const [cut, at, applied] of attempts) {
        if (left === 0) break;
        if (cut) store.cutAt(at, applied);
        let answered: number | undefined;
        try {
          answered = raw(r, verify("00000000")).sw;
        } catch (e) {
          expect(e).toBeInstanceOf(CardMuteError);
        }
        store.restore();
        if (answered === undefined) {
          r.card.powerOn();
          select(r);
        }
        const now = r.card.data.pins.userTries;
        expect(now).toBeLessThanOrEqual(left); // never a try back
        if (answered !== undefined) expect(now).toBe(left - 1); // an answered wrong PIN always costs one
        left = now;
      }
      // restore for the next run: unblock
      store.restore();
      raw(r, encodeCommand({ cla: 0, ins: INS.UNBLOCK_PIN, p1: 0, p2: 1, data: lp(PROFILE.soPin, PROFILE.userPin) }));
    }), { numRuns: 40 });
  });
  it("a cut right after the decrement of a correct PIN costs a try but grants nothing", async () => {
    const store = new CutStore();
    const r = await readyCard(8, store);
    select(r);
    store.cutAt(1, true);
    expect(() => raw(r, verify(PROFILE.userPin))).toThrow(CardMuteError);
    store.restore();
    r.card.powerOn();
    select(r);
    expect(r.card.data.pins.userTries).toBe(PIN_MAX_TRIES - 1);
    expect(r.card.userPinVerified).toBe(false);
    expect(raw(r, verify(PROFILE.userPin)).sw).toBe(SW.OK);
    expect(r.card.data.pins.userTries).toBe(PIN_MAX_TRIES);
  });
});
