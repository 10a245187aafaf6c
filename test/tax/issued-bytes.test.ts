/**
 * issuedInvoiceBytes (the card's splice of code, number and time into the draft's bytes)
 * against encodeInvoice of the filled-in invoice, over random drafts; and decoding is
 * lossless (a leading BOM survives), which the splice relies on.
 */
import { describe, expect, it } from "vitest";
import { decodeInvoice, encodeInvoice, issuedInvoiceBytes, InvoiceKind, type Invoice } from "../../src/tax/index.ts";
import { Rng } from "../../src/sim/index.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const PIECES = ["", "A", "9137", "张三", "办公用品", "\uFEFF", "\uFEFF号", "x".repeat(60), "税务局 Tax 局", "件"];

function pick(rng: Rng, n = 3): string {
  let s = "";
  for (let i = rng.int(n + 1); i > 0; i--) s += PIECES[rng.int(PIECES.length)];
  return s;
}

function randomDraft(rng: Rng): Invoice {
  const red = rng.int(3) === 0;
  const lines = Array.from({ length: 1 + rng.int(4) }, () => {
    const amountFen = rng.int(1_000_000);
    return { name: pick(rng), unit: pick(rng, 1), quantityMilli: rng.int(100_000), unitPriceFen: rng.int(100_000), amountFen, taxRatePermille: rng.int(1001), taxFen: rng.int(amountFen + 1) };
  });
  return {
    kind: red ? InvoiceKind.RED : InvoiceKind.NORMAL, mode: rng.int(2) as 0 | 1, typeCode: ["02601", "00401", "T #~!"][rng.int(3)] as string,
    invoiceCode: "", invoiceNumber: 0, issuedAt: 0, taxpayerId: pick(rng), loginAccount: pick(rng), machineNumber: pick(rng), sellerName: pick(rng),
    buyerName: pick(rng), buyerTaxId: pick(rng), originalCode: red ? "137001900111" : "", originalNumber: red ? 1 + rng.int(1e6) : 0, lines,
    totalAmountFen: lines.reduce((a, l) => a + l.amountFen, 0), totalTaxFen: lines.reduce((a, l) => a + l.taxFen, 0), remark: pick(rng, 5),
  };
}

describe("issued invoice bytes", () => {
  it("equal encodeInvoice of the filled-in draft, for random drafts", () => {
    const rng = new Rng(2024);
    for (let i = 0; i < 400; i++) {
      const draft = randomDraft(rng);
      const draftBytes = encodeInvoice(draft);
      const parsed = decodeInvoice(draftBytes);
      const code = String(100_000 + rng.int(900_000)) + String(rng.int(1_000_000)).padStart(6, "0");
      const number = rng.int(100_000_000);
      const at = 1_767_225_600 + rng.int(1e8);
      expect(hex(issuedInvoiceBytes(draftBytes, code, number, at))).toBe(hex(encodeInvoice({ ...parsed, invoiceCode: code, invoiceNumber: number, issuedAt: at })));
    }
  });

  it("refuse a code that is not 12 digits", () => {
    const draftBytes = encodeInvoice(randomDraft(new Rng(1)));
    expect(() => issuedInvoiceBytes(draftBytes, "12345", 1, 1)).toThrow(/12 digits/);
  });

  it("rest on a lossless decoder: a leading byte-order mark survives decode and re-encode", () => {
    const draft = { ...randomDraft(new Rng(5)), buyerName: "\uFEFF张三" };
    const bytes = encodeInvoice(draft);
    expect(decodeInvoice(bytes).buyerName).toBe("\uFEFF张三");
    expect(hex(encodeInvoice(decodeInvoice(bytes)))).toBe(hex(bytes));
  });
});
