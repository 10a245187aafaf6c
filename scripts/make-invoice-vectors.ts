/** Regenerates fixtures/invoice-vectors.json (run with tsx only when the encoding version changes). */
import { writeFileSync } from "node:fs";
import { encodeInvoice, SM4_STANDIN_TAX_CODE, type Invoice } from "../src/tax/index.ts";
import { toHex } from "../src/sim/index.ts";

const taxKey = "00112233445566778899aabbccddeeff";
const base: Invoice = {
  kind: 0, mode: 0, typeCode: "02601", invoiceCode: "137001900111", invoiceNumber: 1001, issuedAt: 1767225600,
  taxpayerId: "91370100MA3C123456", loginAccount: "acct01", machineNumber: "000000000001",
  sellerName: "济南示例商贸有限公司", buyerName: "张三", buyerTaxId: "",
  originalCode: "", originalNumber: 0,
  lines: [{ name: "办公用品", unit: "件", quantityMilli: 2000, unitPriceFen: 5000, amountFen: 10000, taxRatePermille: 130, taxFen: 1300 }],
  totalAmountFen: 10000, totalTaxFen: 1300, remark: "",
};
const red: Invoice = { ...base, kind: 1, invoiceNumber: 1002, issuedAt: 1767229200, originalCode: "137001900111", originalNumber: 1001,
  lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: 5000, amountFen: 5000, taxRatePermille: 130, taxFen: 650 }], totalAmountFen: 5000, totalTaxFen: 650, remark: "退货 return" };
const draft: Invoice = { ...base, invoiceCode: "", invoiceNumber: 0, issuedAt: 0, mode: 1, lines: [
  { name: "A", unit: "", quantityMilli: 1, unitPriceFen: 1, amountFen: 1, taxRatePermille: 0, taxFen: 0 },
  { name: "B", unit: "kg", quantityMilli: 1500, unitPriceFen: 9_007_199_254, amountFen: 13_510_798_881, taxRatePermille: 60, taxFen: 810_647_933 }],
  totalAmountFen: 13_510_798_882, totalTaxFen: 810_647_933 };
const vectors = [["normal", base], ["red-letter", red], ["draft-two-lines", draft]].map(([name, inv]) => {
  const bytes = encodeInvoice(inv as Invoice);
  return { name, invoice: inv, hex: toHex(bytes), taxKey, taxCode: SM4_STANDIN_TAX_CODE.generate(Buffer.from(taxKey, "hex"), bytes) };
});
writeFileSync("fixtures/invoice-vectors.json", JSON.stringify({ version: 1, vectors }, null, 2) + "\n");
