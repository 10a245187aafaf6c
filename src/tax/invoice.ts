/**
 * The invoice model and its ONE canonical byte encoding, shared by the COS (which signs
 * it and computes the tax control code over it), the host and the bureau (which verify).
 * Layout, field by field, in docs/invoice-encoding.md; golden vectors in
 * fixtures/invoice-vectors.json.
 *
 * Rules: integers big-endian; amounts u64 fen; text u16 length + UTF-8; lists u16 count.
 * Decoding is strict: trailing bytes, bad UTF-8, unknown version or kind, or totals that
 * do not add up are errors, so one invoice has exactly one encoding.
 */
import { ByteReader, ByteWriter, DecodeError } from "./bytes.ts";
import { sumFen, type Fen } from "./amount.ts";

export const INVOICE_ENCODING_VERSION = 1;
export const MAX_INVOICE_LINES = 100;
export const MAX_TEXT_BYTES = 200;
export const MAX_INVOICE_BYTES = 16_384;

export const InvoiceKind = { NORMAL: 0, RED: 1 } as const;
export type InvoiceKindValue = (typeof InvoiceKind)[keyof typeof InvoiceKind];
export const IssueMode = { OFFLINE: 0, ONLINE: 1 } as const;
export type IssueModeValue = (typeof IssueMode)[keyof typeof IssueMode];

export interface InvoiceLine {
  name: string;
  unit: string;
  /** Quantity in thousandths of a unit. */
  quantityMilli: number;
  /** Unit price in fen (excluding tax). */
  unitPriceFen: Fen;
  /** Line amount in fen, excluding tax. */
  amountFen: Fen;
  /** Tax rate in per-mille (130 = 13 %). */
  taxRatePermille: number;
  taxFen: Fen;
}

export interface Invoice {
  kind: InvoiceKindValue;
  mode: IssueModeValue;
  /** Invoice type code, 5 ASCII (the invoice-type table's first field). */
  typeCode: string;
  /** Invoice code (发票代码), 12 digits; filled in by the card from its purchase record. */
  invoiceCode: string;
  /** Invoice number (发票号码), filled in by the card; 0 in a draft. */
  invoiceNumber: number;
  /** Issue time, seconds since the Unix epoch, from the secure clock; 0 in a draft. */
  issuedAt: number;
  taxpayerId: string;
  loginAccount: string;
  machineNumber: string;
  sellerName: string;
  buyerName: string;
  buyerTaxId: string;
  /** For a red-letter invoice: the original's code and number; "" and 0 otherwise. */
  originalCode: string;
  originalNumber: number;
  lines: InvoiceLine[];
  totalAmountFen: Fen;
  totalTaxFen: Fen;
  remark: string;
}

/** Total including tax (价税合计): what the limits are checked against. */
export function invoiceGrandTotal(inv: Pick<Invoice, "totalAmountFen" | "totalTaxFen">): Fen {
  return sumFen([inv.totalAmountFen, inv.totalTaxFen]);
}

/** One encoder for every text field (an invoice has a dozen; each used to build its own). */
const utf8 = new TextEncoder();

function text(w: ByteWriter, s: string, what: string): void {
  const b = utf8.encode(s);
  if (b.length > MAX_TEXT_BYTES) throw new RangeError(`${what} is ${b.length} bytes; at most ${MAX_TEXT_BYTES}`);
  w.bytes(b);
}

/** Structural checks that both encode and decode enforce. Returns a reason or null. */
export function invoiceProblem(inv: Invoice): string | null {
  if (inv.kind !== InvoiceKind.NORMAL && inv.kind !== InvoiceKind.RED) return `unknown kind ${inv.kind}`;
  if (inv.mode !== IssueMode.OFFLINE && inv.mode !== IssueMode.ONLINE) return `unknown mode ${inv.mode}`;
  if (!/^[\x20-\x7e]{5}$/.test(inv.typeCode)) return "typeCode must be 5 printable ASCII characters";
  if (!/^(\d{12})?$/.test(inv.invoiceCode)) return "invoiceCode must be 12 digits or empty";
  if (inv.lines.length === 0) return "an invoice needs at least one line";
  if (inv.lines.length > MAX_INVOICE_LINES) return `at most ${MAX_INVOICE_LINES} lines`;
  for (const l of inv.lines) {
    if (!Number.isInteger(l.taxRatePermille) || l.taxRatePermille < 0 || l.taxRatePermille > 1000) return "tax rate per mille must be 0..1000";
    for (const v of [l.quantityMilli, l.unitPriceFen, l.amountFen, l.taxFen]) if (!Number.isSafeInteger(v) || v < 0) return "line figures must be non-negative integers";
  }
  let amount = 0;
  let tax = 0;
  for (const l of inv.lines) {
    amount += l.amountFen;
    tax += l.taxFen;
  }
  if (!Number.isSafeInteger(amount) || amount !== inv.totalAmountFen) return "totalAmountFen is not the sum of the line amounts";
  if (!Number.isSafeInteger(tax) || tax !== inv.totalTaxFen) return "totalTaxFen is not the sum of the line taxes";
  if (!Number.isSafeInteger(amount + tax)) return "grand total too large";
  if (inv.kind === InvoiceKind.RED ? !/^\d{12}$/.test(inv.originalCode) || inv.originalNumber < 1 : inv.originalCode !== "" || inv.originalNumber !== 0) {
    return "a red-letter invoice names its original (12-digit code, number >= 1); a normal one has none";
  }
  return null;
}

export function encodeInvoice(inv: Invoice): Uint8Array {
  const problem = invoiceProblem(inv);
  if (problem) throw new RangeError(`invoice: ${problem}`);
  const w = new ByteWriter();
  w.u8(INVOICE_ENCODING_VERSION).u8(inv.kind).u8(inv.mode);
  text(w, inv.typeCode, "typeCode");
  text(w, inv.invoiceCode, "invoiceCode");
  w.u32(inv.invoiceNumber).u32(inv.issuedAt);
  text(w, inv.taxpayerId, "taxpayerId");
  text(w, inv.loginAccount, "loginAccount");
  text(w, inv.machineNumber, "machineNumber");
  text(w, inv.sellerName, "sellerName");
  text(w, inv.buyerName, "buyerName");
  text(w, inv.buyerTaxId, "buyerTaxId");
  text(w, inv.originalCode, "originalCode");
  w.u32(inv.originalNumber);
  w.u16(inv.lines.length);
  for (const l of inv.lines) {
    text(w, l.name, "line name");
    text(w, l.unit, "line unit");
    w.u64(l.quantityMilli).u64(l.unitPriceFen).u64(l.amountFen).u16(l.taxRatePermille).u64(l.taxFen);
  }
  w.u64(inv.totalAmountFen).u64(inv.totalTaxFen);
  text(w, inv.remark, "remark");
  const out = w.finish();
  if (out.length > MAX_INVOICE_BYTES) throw new RangeError(`encoded invoice is ${out.length} bytes; at most ${MAX_INVOICE_BYTES}`);
  return out;
}

/** Offset of the invoice code's u16 length: version, kind, mode, then the type code's text. */
function invoiceCodeOffset(bytes: Uint8Array): number {
  return 3 + 2 + (((bytes[3] as number) << 8) | (bytes[4] as number));
}

/**
 * The canonical encoding of a draft once the card has filled in code, number and time:
 * the draft's own bytes with those three fields replaced. `draftBytes` must be a draft
 * that decodeInvoice accepted -- decoding is strict and lossless, so its bytes are the
 * canonical encoding and the result equals encodeInvoice of the filled-in invoice (a test
 * holds the two equal), without re-encoding a dozen text fields on every issue.
 */
export function issuedInvoiceBytes(draftBytes: Uint8Array, invoiceCode: string, invoiceNumber: number, issuedAt: number): Uint8Array {
  if (!/^\d{12}$/.test(invoiceCode)) throw new RangeError("invoice: invoiceCode must be 12 digits");
  const at = invoiceCodeOffset(draftBytes);
  const oldCode = ((draftBytes[at] as number) << 8) | (draftBytes[at + 1] as number);
  const rest = draftBytes.subarray(at + 2 + oldCode + 8);
  const w = new ByteWriter().raw(draftBytes.subarray(0, at));
  text(w, invoiceCode, "invoiceCode");
  const out = w.u32(invoiceNumber).u32(issuedAt).raw(rest).finish();
  if (out.length > MAX_INVOICE_BYTES) throw new RangeError(`encoded invoice is ${out.length} bytes; at most ${MAX_INVOICE_BYTES}`);
  return out;
}

export function decodeInvoice(bytes: Uint8Array): Invoice {
  if (bytes.length > MAX_INVOICE_BYTES) throw new DecodeError(`invoice of ${bytes.length} bytes exceeds ${MAX_INVOICE_BYTES}`);
  const r = new ByteReader(bytes, "invoice");
  const version = r.u8();
  if (version !== INVOICE_ENCODING_VERSION) throw new DecodeError(`invoice: unknown encoding version ${version}`);
  const kind = r.u8() as InvoiceKindValue;
  const mode = r.u8() as IssueModeValue;
  const t = () => r.text(MAX_TEXT_BYTES);
  const typeCode = t();
  const invoiceCode = t();
  const invoiceNumber = r.u32();
  const issuedAt = r.u32();
  const taxpayerId = t();
  const loginAccount = t();
  const machineNumber = t();
  const sellerName = t();
  const buyerName = t();
  const buyerTaxId = t();
  const originalCode = t();
  const originalNumber = r.u32();
  const count = r.u16();
  if (count > MAX_INVOICE_LINES) throw new DecodeError(`invoice: ${count} lines exceeds ${MAX_INVOICE_LINES}`);
  const lines: InvoiceLine[] = [];
  for (let i = 0; i < count; i++) {
    lines.push({ name: t(), unit: t(), quantityMilli: r.u64(), unitPriceFen: r.u64(), amountFen: r.u64(), taxRatePermille: r.u16(), taxFen: r.u64() });
  }
  const totalAmountFen = r.u64();
  const totalTaxFen = r.u64();
  const remark = t();
  r.end();
  const inv: Invoice = {
    kind, mode, typeCode, invoiceCode, invoiceNumber, issuedAt, taxpayerId, loginAccount, machineNumber,
    sellerName, buyerName, buyerTaxId, originalCode, originalNumber, lines, totalAmountFen, totalTaxFen, remark,
  };
  const problem = invoiceProblem(inv);
  if (problem) throw new DecodeError(`invoice: ${problem}`);
  return inv;
}

/** Invoice number as printed: 8 digits. */
export function formatInvoiceNumber(n: number): string {
  return String(n).padStart(8, "0");
}
