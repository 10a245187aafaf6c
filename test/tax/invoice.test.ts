import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { decodeInvoice, encodeInvoice, SM4_STANDIN_TAX_CODE, DecodeError, formatYuan, parseYuan, taxFen, invoiceGrandTotal, type Invoice } from "../../src/tax/index.ts";
import { fromHex, toHex } from "../../src/sim/index.ts";

const vectors = JSON.parse(readFileSync(new URL("../../fixtures/invoice-vectors.json", import.meta.url), "utf8")) as {
  vectors: { name: string; invoice: Invoice; hex: string; taxKey: string; taxCode: string }[];
};

describe("canonical invoice encoding", () => {
  it("has golden vectors", () => expect(vectors.vectors.length).toBeGreaterThanOrEqual(3));
  for (const v of vectors.vectors) {
    it(`encodes vector ${v.name} byte for byte and decodes it back`, () => {
      expect(toHex(encodeInvoice(v.invoice))).toBe(v.hex);
      expect(decodeInvoice(fromHex(v.hex))).toEqual(v.invoice);
    });
    it(`gives the tax control code of vector ${v.name}`, () => {
      const bytes = fromHex(v.hex);
      expect(SM4_STANDIN_TAX_CODE.generate(fromHex(v.taxKey), bytes)).toBe(v.taxCode);
      expect(SM4_STANDIN_TAX_CODE.verify(fromHex(v.taxKey), bytes, v.taxCode)).toBe(true);
      const other = fromHex(v.taxKey);
      other[0] = (other[0] as number) ^ 1;
      expect(SM4_STANDIN_TAX_CODE.verify(other, bytes, v.taxCode)).toBe(false);
    });
  }

  const base = vectors.vectors[0]!.invoice;
  it("rejects totals that are not the sum of the lines", () => {
    expect(() => encodeInvoice({ ...base, totalAmountFen: base.totalAmountFen + 1 })).toThrow(/sum/);
    expect(() => encodeInvoice({ ...base, totalTaxFen: 0 })).toThrow(/sum/);
  });
  it("rejects fractional or negative money", () => {
    expect(() => encodeInvoice({ ...base, lines: [{ ...base.lines[0]!, amountFen: 100.5 }], totalAmountFen: 100.5 })).toThrow();
    expect(() => encodeInvoice({ ...base, lines: [{ ...base.lines[0]!, taxFen: -1 }], totalTaxFen: -1 })).toThrow();
  });
  it("rejects a red-letter invoice without its original and a normal one with one", () => {
    expect(() => encodeInvoice({ ...base, kind: 1 })).toThrow(/original/);
    expect(() => encodeInvoice({ ...base, originalCode: "137001900111", originalNumber: 5 })).toThrow(/original/);
  });
  it("decodes strictly: trailing bytes, truncation, bad version, bad UTF-8", () => {
    const b = fromHex(vectors.vectors[0]!.hex);
    expect(() => decodeInvoice(Uint8Array.of(...b, 0))).toThrow(DecodeError);
    expect(() => decodeInvoice(b.subarray(0, b.length - 1))).toThrow(DecodeError);
    const v2 = b.slice();
    v2[0] = 2;
    expect(() => decodeInvoice(v2)).toThrow(/version/);
    const bad = b.slice();
    // sellerName starts after taxpayer/login/machine; corrupt its first UTF-8 byte
    const i = toHex(b).indexOf("e6b58e") / 2;
    bad[i] = 0xff;
    expect(() => decodeInvoice(bad)).toThrow(/UTF-8/);
  });
  it("never throws anything but DecodeError on random bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeInvoice(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
      }
    }), { numRuns: 500 });
  });
  it("round-trips mutated vectors or rejects them", () => {
    const b = fromHex(vectors.vectors[1]!.hex);
    fc.assert(fc.property(fc.nat(b.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const m = b.slice();
      m[at] = (m[at] as number) ^ x;
      let inv: Invoice;
      try {
        inv = decodeInvoice(m);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        return;
      }
      expect(encodeInvoice(inv)).toEqual(m);
    }), { numRuns: 300 });
  });
});

describe("amounts in fen", () => {
  it("parses and formats yuan without floating point", () => {
    expect(parseYuan("1234.56")).toBe(123456);
    expect(parseYuan("0.1")).toBe(10);
    expect(parseYuan("7")).toBe(700);
    expect(formatYuan(5)).toBe("0.05");
    expect(formatYuan(123456)).toBe("1234.56");
    for (const bad of ["-1", "1.234", "1e3", " 1", "", "0x10"]) expect(() => parseYuan(bad)).toThrow();
  });
  it("computes tax half up in per-mille and grand totals", () => {
    expect(taxFen(10000, 130)).toBe(1300);
    expect(taxFen(5, 100)).toBe(1); // 0.5 -> 1
    expect(taxFen(4, 100)).toBe(0);
    expect(invoiceGrandTotal({ totalAmountFen: 10000, totalTaxFen: 1300 })).toBe(11300);
  });
});
