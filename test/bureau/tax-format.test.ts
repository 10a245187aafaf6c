/** The bureau reads src/tax's golden invoice vectors and checks their tax control codes. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvoiceFormatError, TAX_INVOICE_FORMAT } from "../../src/bureau/index.ts";
import { signedInvoiceBytes } from "../../src/tax/index.ts";

const VECTORS = JSON.parse(readFileSync(resolve(import.meta.dirname, "../../fixtures/invoice-vectors.json"), "utf8")) as {
  vectors: { name: string; hex: string; taxKey: string; taxCode: string; invoice: { invoiceCode: string; invoiceNumber: number; kind: number; totalAmountFen: number; totalTaxFen: number; issuedAt: number } }[];
};

describe("TAX_INVOICE_FORMAT on src/tax's golden vectors", () => {
  for (const v of VECTORS.vectors.filter((x) => x.invoice.invoiceNumber !== 0)) {
    it(`decodes "${v.name}" and verifies its tax control code`, () => {
      const signed = signedInvoiceBytes(new Uint8Array(Buffer.from(v.hex, "hex")), v.taxCode);
      const fields = TAX_INVOICE_FORMAT.decode(signed);
      expect(fields).toMatchObject({
        invoiceCode: v.invoice.invoiceCode, invoiceNumber: String(v.invoice.invoiceNumber).padStart(8, "0"),
        kind: v.invoice.kind === 1 ? "red" : "normal", totalFen: v.invoice.totalAmountFen + v.invoice.totalTaxFen,
        issuedAt: v.invoice.issuedAt * 1000, taxControlCode: v.taxCode,
      });
      const key = new Uint8Array(Buffer.from(v.taxKey, "hex"));
      expect(TAX_INVOICE_FORMAT.verifyTaxControlCode(fields, signed, key)).toBe(true);
      expect(TAX_INVOICE_FORMAT.verifyTaxControlCode(fields, signed, key.map((b) => b ^ 1))).toBe(false);
    });
  }

  it("refuses a draft (no code, number or time): only issued invoices are uploaded", () => {
    const draft = VECTORS.vectors.find((x) => x.invoice.invoiceNumber === 0)!;
    expect(draft).toBeDefined();
    expect(() => TAX_INVOICE_FORMAT.decode(signedInvoiceBytes(new Uint8Array(Buffer.from(draft.hex, "hex")), draft.taxCode))).toThrow(/draft/);
  });

  it("refuses malformed signed invoices with InvoiceFormatError", () => {
    const v = VECTORS.vectors[0]!;
    const encoding = new Uint8Array(Buffer.from(v.hex, "hex"));
    expect(() => TAX_INVOICE_FORMAT.decode(encoding)).toThrow(InvoiceFormatError); // no tax code at the end
    expect(() => TAX_INVOICE_FORMAT.decode(signedInvoiceBytes(encoding.subarray(1), v.taxCode))).toThrow(InvoiceFormatError);
    expect(() => TAX_INVOICE_FORMAT.decode(new Uint8Array(5))).toThrow(InvoiceFormatError);
    const trailing = signedInvoiceBytes(Uint8Array.of(...encoding, 0), v.taxCode);
    expect(() => TAX_INVOICE_FORMAT.decode(trailing)).toThrow(InvoiceFormatError);
  });
});
