import { describe, expect, it } from "vitest";
import { encodeCommand, INS, TAX_AID, SW, call, transceive, encodeInvoice, decodeIssued, decodeInvoice, CLA_PROPRIETARY, encodeInvoiceKey } from "../../src/tax/index.ts";
import { ATR } from "../../src/cos/index.ts";
import { CardMuteError } from "../../src/cos/index.ts";
import { blankCard, readyCard, raw, cmd, draft, issue } from "./helpers.ts";

const sel = (aid = TAX_AID) => encodeCommand({ cla: 0, ins: INS.SELECT, p1: 4, p2: 0, data: aid });

describe("APDU layer", () => {
  it("answers power-on with the ATR and refuses to work unpowered", () => {
    const r = blankCard();
    expect(r.card.powerOn()).toEqual(ATR);
    r.card.powerOff();
    expect(() => r.card.process(sel())).toThrow(CardMuteError);
  });
  it("gives the ISO status word for each malformed command", () => {
    const r = blankCard();
    expect(raw(r, Uint8Array.of(0x80, 0x60)).sw).toBe(SW.WRONG_LENGTH); // < 4 bytes
    expect(raw(r, Uint8Array.of(0x80, 0x60, 0, 0, 5, 1)).sw).toBe(SW.WRONG_LENGTH); // Lc mismatch
    expect(raw(r, cmd(INS.GET_DEVICE_INFO)).sw).toBe(SW.CONDITIONS_NOT_SATISFIED); // not selected
    expect(raw(r, sel(Uint8Array.of(1, 2, 3, 4, 5))).sw).toBe(SW.FILE_NOT_FOUND);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.SELECT, p1: 1, p2: 0, data: TAX_AID })).sw).toBe(SW.WRONG_P1P2);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.SELECT, p1: 4, p2: 4, data: TAX_AID })).sw).toBe(SW.WRONG_P1P2);
    // P2 0C (no response data), as PC/SC tools send it, selects too.
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.SELECT, p1: 4, p2: 0x0c, data: TAX_AID })).sw).toBe(SW.OK);
    expect(raw(r, sel()).sw).toBe(SW.OK);
    expect(raw(r, encodeCommand({ cla: 0x80, ins: 0x99 })).sw).toBe(SW.INS_NOT_SUPPORTED);
    expect(raw(r, encodeCommand({ cla: 0x20, ins: INS.GET_DEVICE_INFO })).sw).toBe(SW.CLA_NOT_SUPPORTED);
    expect(raw(r, encodeCommand({ cla: 0x81, ins: INS.GET_DEVICE_INFO })).sw).toBe(SW.LOGICAL_CHANNEL_NOT_SUPPORTED);
    expect(raw(r, encodeCommand({ cla: 0x00, ins: INS.GET_DEVICE_INFO, le: 64 })).sw).toBe(SW.CLA_NOT_SUPPORTED);
    expect(raw(r, encodeCommand({ cla: 0x80, ins: INS.GET_DEVICE_INFO, p1: 1, le: 64 })).sw).toBe(SW.WRONG_P1P2);
    expect(raw(r, encodeCommand({ cla: 0x80, ins: INS.GET_DEVICE_INFO, data: Uint8Array.of(1), le: 64 })).sw).toBe(SW.WRONG_LENGTH);
    expect(raw(r, encodeCommand({ cla: 0x84, ins: INS.GET_DEVICE_INFO, data: new Uint8Array(28) })).sw).toBe(SW.SECURE_MESSAGING_NOT_SUPPORTED);
    expect(raw(r, encodeCommand({ cla: 0x80, ins: INS.SET_LIMITS, data: new Uint8Array(40) })).sw).toBe(SW.SECURITY_NOT_SATISFIED);
    expect(raw(r, encodeCommand({ cla: 0x84, ins: INS.SET_LIMITS, data: new Uint8Array(28) })).sw).toBe(SW.SECURITY_NOT_SATISFIED);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.GET_RESPONSE, le: 10 })).sw).toBe(SW.CONDITIONS_NOT_SATISFIED);
  });
  it("case 1, 2 (short and extended Le): device info fits; GET CHALLENGE gives Le bytes", () => {
    const r = blankCard();
    raw(r, sel());
    expect(raw(r, encodeCommand({ cla: 0x80, ins: INS.GET_DEVICE_INFO, le: 256 })).data.length).toBe(64);
    expect(raw(r, encodeCommand({ cla: 0x80, ins: INS.GET_DEVICE_INFO, le: 1000, extended: true })).data.length).toBe(64);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.GET_CHALLENGE, le: 8 })).data.length).toBe(8);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.GET_CHALLENGE })).sw).toBe(SW.WRONG_LENGTH);
    // case 1 for a command that returns data: all of it waits behind 61xx
    const c1 = raw(r, encodeCommand({ cla: 0x80, ins: INS.GET_DEVICE_INFO }));
    expect(c1.sw).toBe(0x6140);
    expect(raw(r, encodeCommand({ cla: 0, ins: INS.GET_RESPONSE, le: 0x40 })).data.length).toBe(64);
  });
  it("returns long answers in pieces with 61xx / GET RESPONSE (short Le), whole with extended Le", async () => {
    const r = await readyCard();
    for (let i = 0; i < 3; i++) await issue(r);
    const exportCmd = (le: number) => cmd(INS.EXPORT_UNUPLOADED, new Uint8Array(4), le);
    const first = raw(r, exportCmd(256));
    expect(first.data.length).toBe(256);
    expect(first.sw & 0xff00).toBe(0x6100);
    const whole = await transceive(r.send, exportCmd(256));
    expect(whole.sw).toBe(SW.OK);
    expect(whole.data.length).toBeGreaterThan(256);
    const ext = raw(r, exportCmd(65536));
    expect(ext.sw).toBe(SW.OK);
    expect(ext.data.length).toBe(whole.data.length);
  });
  it("accepts command chaining (CLA bit 0x10) and refuses a broken chain with 6883", async () => {
    const r = await readyCard();
    const body = encodeInvoice(draft());
    const a = body.subarray(0, 100);
    const b = body.subarray(100);
    expect(raw(r, encodeCommand({ cla: 0x90, ins: INS.ISSUE, data: a })).sw).toBe(SW.OK);
    const out = await transceive(r.send, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.ISSUE, data: b, le: 256 }));
    expect(out.sw).toBe(SW.OK);
    expect(decodeInvoice(decodeIssued(out.data).invoice).invoiceNumber).toBe(1001);
    expect(raw(r, encodeCommand({ cla: 0x90, ins: INS.ISSUE, data: a })).sw).toBe(SW.OK);
    expect(raw(r, encodeCommand({ cla: 0x80, ins: INS.READ_INVOICE, data: encodeInvoiceKey("137001900111", 1001) })).sw).toBe(SW.LAST_COMMAND_EXPECTED);
    // the broken chain issued nothing
    expect(r.card.data.counters.invoiceSeq).toBe(1);
  });
  it("a reset (power cycle) drops selection and PIN state", async () => {
    const r = await readyCard();
    r.card.powerOff();
    r.card.powerOn();
    expect(raw(r, cmd(INS.GET_DEVICE_INFO, undefined, 64)).sw).toBe(SW.CONDITIONS_NOT_SATISFIED);
    raw(r, sel());
    expect(raw(r, cmd(INS.GET_TAXPAYER, undefined, 256)).sw).toBe(SW.SECURITY_NOT_SATISFIED);
    void call;
  });
});
