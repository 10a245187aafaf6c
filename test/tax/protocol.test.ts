import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  E, encodeCommand, errorForSw, ERROR_COUNT, parseCommand, swForError, TAX_ERRORS, TAX_FUNCTIONS, TYUKEY_BASE, SW, describeSw,
  SmSession, unwrapData, wrapData, deriveSessionKeys, TaxError, encodeLayout, decodeLayout, LAYOUTS, INVOICE_TYPE_LAYOUT, transceive,
  joinResponse, CLA_SM,
} from "../../src/tax/index.ts";

describe("error codes", () => {
  it("are 27, TYUKEY_BASE+1..27, with the paper's fixed ones", () => {
    expect(TAX_ERRORS).toHaveLength(ERROR_COUNT);
    expect(ERROR_COUNT).toBe(27);
    TAX_ERRORS.forEach((e, i) => expect(e.code).toBe(TYUKEY_BASE + i + 1));
    expect(TAX_ERRORS[16]!.name).toBe("TYUKEY_DEVICE_BAD_CERT");
    expect(TAX_ERRORS[17]!.name).toBe("TYUKEY_DEVICE_HAVE_NOTRANCE_DATA");
    expect(TAX_ERRORS[18]!.name).toBe("TYUKEY_DEVICE_DATA_NOT_EXIST");
  });
  it("map to distinct status words and back", () => {
    const sws = TAX_ERRORS.filter((e) => e.sw !== null).map((e) => e.sw);
    expect(new Set(sws).size).toBe(sws.length);
    for (const e of TAX_ERRORS) {
      if (e.sw === null) continue;
      expect(errorForSw(swForError(e.code, 3))).toBe(e.code);
      expect(describeSw(swForError(e.code, 3))).not.toMatch(/unknown/);
    }
    expect(swForError(E.PIN_ERROR, 2)).toBe(0x63c2);
    expect(errorForSw(SW.OK)).toBe(0);
    expect(errorForSw(0x6123)).toBe(0);
    expect(() => swForError(E.NOT_FOUND)).toThrow();
  });
  it("the 16 functions have distinct INS codes and names", () => {
    expect(TAX_FUNCTIONS).toHaveLength(16);
    expect(new Set(TAX_FUNCTIONS.map((f) => f.ins)).size).toBe(16);
    expect(new Set(TAX_FUNCTIONS.map((f) => f.cName)).size).toBe(16);
    expect(TAX_FUNCTIONS[0]!.cName).toBe("UKEY_GetNsrjxxqy");
  });
});

describe("APDU codec", () => {
  it("encodes and parses every case, short and extended", () => {
    const cases = [
      { cla: 0, ins: 0xa4, p1: 4, p2: 0, data: new Uint8Array(0), le: 0, extended: false },
      { cla: 0, ins: 0x84, p1: 0, p2: 0, data: new Uint8Array(0), le: 256, extended: false },
      { cla: 0x80, ins: 0x70, p1: 0, p2: 0, data: new Uint8Array(300).fill(7), le: 0, extended: true },
      { cla: 0x80, ins: 0x70, p1: 0, p2: 0, data: new Uint8Array(3), le: 65536, extended: true },
      { cla: 0x80, ins: 0x70, p1: 1, p2: 2, data: new Uint8Array(0), le: 1000, extended: true },
    ];
    for (const c of cases) {
      const r = parseCommand(encodeCommand(c));
      expect(r.ok && r.apdu).toEqual(c);
    }
  });
  it("rejects inconsistent lengths without throwing", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
      const r = parseCommand(b);
      if (r.ok) expect(encodeCommand(r.apdu).length).toBe(b.length);
    }), { numRuns: 2000 });
    expect(parseCommand(Uint8Array.of(0, 0xa4, 4, 0, 5, 1, 2)).ok).toBe(false);
    expect(parseCommand(Uint8Array.of(0, 0xa4, 4)).ok).toBe(false);
  });
  it("transceive follows 61xx with GET RESPONSE", async () => {
    const full = new Uint8Array(600).map((_, i) => i & 0xff);
    let pos = 0;
    const send = async (apdu: Uint8Array) => {
      if (apdu[1] === 0xc0) {
        const n = Math.min(256, full.length - pos);
        const chunk = full.subarray(pos, pos + n);
        pos += n;
        const left = full.length - pos;
        return joinResponse(chunk, left ? 0x6100 | Math.min(left, 255) : 0x9000);
      }
      pos = 256;
      return joinResponse(full.subarray(0, 256), 0x61ff);
    };
    const r = await transceive(send, encodeCommand({ cla: 0x80, ins: 0x78, le: 256 }));
    expect(r.sw).toBe(0x9000);
    expect(r.data).toEqual(full);
  });
});

describe("secure messaging", () => {
  const key = new Uint8Array(16).fill(9);
  const challenge = new Uint8Array(16).map((_, i) => i);
  it("unwraps what the issuer wraps", () => {
    const s = new SmSession(key, challenge);
    const apdu = s.wrap(0x67, 0, 0, Uint8Array.of(1, 2, 3));
    const p = parseCommand(apdu);
    if (!p.ok) throw new Error(p.reason);
    const r = unwrapData(deriveSessionKeys(key, challenge), 0, [CLA_SM, 0x67, 0, 0], p.apdu.data);
    expect(r.plain).toEqual(Uint8Array.of(1, 2, 3));
    expect(r.counter).toBe(1);
  });
  it("refuses a forged MAC, a changed header and a replayed counter", () => {
    const keys = deriveSessionKeys(key, challenge);
    const data = wrapData(keys, 5, [CLA_SM, 0x67, 0, 0], Uint8Array.of(1));
    const code = (f: () => unknown) => { try { f(); return 0; } catch (e) { return (e as TaxError).code; } };
    expect(code(() => unwrapData(keys, 4, [CLA_SM, 0x67, 0, 0], data))).toBe(0);
    expect(code(() => unwrapData(keys, 5, [CLA_SM, 0x67, 0, 0], data))).toBe(E.REPLAY);
    expect(code(() => unwrapData(keys, 0, [CLA_SM, 0x65, 0, 0], data))).toBe(E.MAC);
    for (let i = 0; i < data.length; i++) {
      const m = data.slice();
      m[i] = (m[i] as number) ^ 0x40;
      expect(code(() => unwrapData(keys, 0, [CLA_SM, 0x67, 0, 0], m))).toBe(E.MAC);
    }
    expect(code(() => unwrapData(keys, 0, [CLA_SM, 0x67, 0, 0], data.subarray(0, 10)))).toBe(E.LENGTH);
    const otherKeys = deriveSessionKeys(key, challenge.map((b) => b ^ 1));
    expect(code(() => unwrapData(otherKeys, 0, [CLA_SM, 0x67, 0, 0], data))).toBe(E.MAC);
  });
});

describe("layouts", () => {
  it("the invoice-type table is 10 records of 37 bytes, type code 5 ASCII then industry code 4 ASCII", () => {
    expect(INVOICE_TYPE_LAYOUT.records).toBe(10);
    expect(INVOICE_TYPE_LAYOUT.recordLength).toBe(37);
    expect(INVOICE_TYPE_LAYOUT.fields[0]).toMatchObject({ offset: 0, name: "typeCode", length: 5, encoding: "ascii" });
    expect(INVOICE_TYPE_LAYOUT.fields[1]).toMatchObject({ offset: 5, name: "industryCode", length: 4, encoding: "ascii" });
  });
  it("round-trip and reject oversize or unknown fields", () => {
    const v = { typeCode: "02601", industryCode: "5200", singleLimitFen: 1_000_000, validFrom: "20260101", validTo: "20261231", status: 1, maxLines: 8 };
    const b = encodeLayout(INVOICE_TYPE_LAYOUT, v);
    expect(decodeLayout(INVOICE_TYPE_LAYOUT, b)).toEqual(v);
    expect(() => encodeLayout(INVOICE_TYPE_LAYOUT, { ...v, typeCode: "026011" })).toThrow();
    expect(() => encodeLayout(INVOICE_TYPE_LAYOUT, { ...v, nope: 1 })).toThrow(/unknown/);
    expect(() => encodeLayout(INVOICE_TYPE_LAYOUT, { ...v, status: 256 })).toThrow();
    for (const l of LAYOUTS) expect(l.fields.reduce((n, f) => n + f.length, 0)).toBe(l.recordLength);
  });
});
