/**
 * The invoice bytes the bureau receives are the Ukey's canonical encoding, signed by the
 * device key. That encoding and the tax-control-code algorithm belong to src/tax (shared by
 * COS, host and bureau); until it lands the bureau takes them as a plug-in, `InvoiceFormat`,
 * and ships a provisional one so that its storage, HTTP layer and checks can be tested.
 *
 * Provisional format "provisional-json-v0": UTF-8 JSON with exactly these keys in this order
 *   {"v":0,"taxpayerId","deviceSerial","invoiceCode","invoiceNumber","kind","issuedAt","totalFen","taxControlCode"}
 * no whitespace; it must re-encode to the same bytes (one byte form per invoice).
 * Provisional tax control code: the first 10 bytes, as 20 upper-case hex digits, of the
 * SM4 CBC-MAC (ISO 9797-1 M2 padding) under the device's 16-byte tax-control key of the same
 * JSON without the taxControlCode key.
 */
import { sm4CbcMac, SM4_KEY_BYTES } from "../crypto/index.ts";

export interface InvoiceFields {
  taxpayerId: string;
  deviceSerial: string;
  /** 发票代码: 10 or 12 digits. */
  invoiceCode: string;
  /** 发票号码: 8 digits. */
  invoiceNumber: string;
  /** "normal", "void" or "red" (red-letter credit invoice). */
  kind: string;
  /** Issue time from the Ukey's secure clock, ms since the epoch. */
  issuedAt: number;
  /** Total in integer fen; negative only for red-letter invoices. */
  totalFen: number;
  taxControlCode: string;
}

export class InvoiceFormatError extends Error {
  readonly code = "MALFORMED_INVOICE";
}

export interface InvoiceFormat {
  readonly name: string;
  /** Decodes the signed bytes; throws InvoiceFormatError on anything malformed. */
  decode(bytes: Uint8Array): InvoiceFields;
  /** Checks the tax control code with the device's tax-control key. */
  verifyTaxControlCode(invoice: InvoiceFields, bytes: Uint8Array, taxControlKey: Uint8Array): boolean;
}

export const MAX_INVOICE_BYTES = 8 * 1024;
export const INVOICE_KINDS = ["normal", "void", "red"] as const;
const TAX_CONTROL_CODE_BYTES = 10;
const MAX_TOTAL_FEN = 1_000_000_000_000; // 100 亿元: far beyond any single invoice

type UnsignedFields = Omit<InvoiceFields, "taxControlCode">;

function orderedJson(fields: UnsignedFields, taxControlCode?: string): string {
  const ordered: Record<string, unknown> = {
    v: 0, taxpayerId: fields.taxpayerId, deviceSerial: fields.deviceSerial, invoiceCode: fields.invoiceCode,
    invoiceNumber: fields.invoiceNumber, kind: fields.kind, issuedAt: fields.issuedAt, totalFen: fields.totalFen,
  };
  if (taxControlCode !== undefined) ordered.taxControlCode = taxControlCode;
  return JSON.stringify(ordered);
}

function provisionalTaxControlCode(fields: UnsignedFields, key: Uint8Array): string {
  if (key.length !== SM4_KEY_BYTES) throw new InvoiceFormatError(`tax-control key must be ${SM4_KEY_BYTES} bytes`);
  const mac = sm4CbcMac(key, new TextEncoder().encode(orderedJson(fields)));
  return Buffer.from(mac.subarray(0, TAX_CONTROL_CODE_BYTES)).toString("hex").toUpperCase();
}

function checkFields(f: Record<string, unknown>): UnsignedFields & { taxControlCode: unknown } {
  const text = (key: string, pattern: RegExp): string => {
    const value = f[key];
    if (typeof value !== "string" || !pattern.test(value)) throw new InvoiceFormatError(`invoice field ${key} is missing or malformed`);
    return value;
  };
  const integer = (key: string, min: number, max: number): number => {
    const value = f[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) throw new InvoiceFormatError(`invoice field ${key} must be an integer in [${min}, ${max}]`);
    return value;
  };
  const kind = text("kind", /^(normal|void|red)$/);
  const totalFen = integer("totalFen", -MAX_TOTAL_FEN, MAX_TOTAL_FEN);
  if (totalFen < 0 && kind !== "red") throw new InvoiceFormatError("only a red-letter invoice may have a negative total");
  return {
    taxpayerId: text("taxpayerId", /^[0-9A-Z]{15,20}$/),
    deviceSerial: text("deviceSerial", /^[0-9A-Za-z-]{1,32}$/),
    invoiceCode: text("invoiceCode", /^(\d{10}|\d{12})$/),
    invoiceNumber: text("invoiceNumber", /^\d{8}$/),
    kind,
    issuedAt: integer("issuedAt", 0, 8_640_000_000_000_000),
    totalFen,
    taxControlCode: f.taxControlCode,
  };
}

/** The provisional format; replace with src/tax's canonical encoding when it lands. */
export const PROVISIONAL_INVOICE_FORMAT: InvoiceFormat = {
  name: "provisional-json-v0",
  decode(bytes: Uint8Array): InvoiceFields {
    if (bytes.length === 0 || bytes.length > MAX_INVOICE_BYTES) throw new InvoiceFormatError(`invoice must be 1-${MAX_INVOICE_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      throw new InvoiceFormatError("invoice bytes are not UTF-8 JSON");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || (parsed as { v?: unknown }).v !== 0) {
      throw new InvoiceFormatError("invoice is not a version-0 object");
    }
    const checked = checkFields(parsed as Record<string, unknown>);
    if (typeof checked.taxControlCode !== "string" || !/^[0-9A-F]{20}$/.test(checked.taxControlCode)) throw new InvoiceFormatError("invoice field taxControlCode is malformed");
    const fields: InvoiceFields = { ...checked, taxControlCode: checked.taxControlCode };
    if (orderedJson(fields, fields.taxControlCode) !== new TextDecoder().decode(bytes)) throw new InvoiceFormatError("invoice is not in canonical form");
    return fields;
  },
  verifyTaxControlCode(invoice: InvoiceFields, _bytes: Uint8Array, key: Uint8Array): boolean {
    return provisionalTaxControlCode(invoice, key) === invoice.taxControlCode;
  },
};

/** Encodes an invoice in the provisional format with its tax control code (for tests, bench, demo). */
export function encodeProvisionalInvoice(fields: UnsignedFields, taxControlKey: Uint8Array): Uint8Array {
  const code = provisionalTaxControlCode(fields, taxControlKey);
  const bytes = new TextEncoder().encode(orderedJson(fields, code));
  PROVISIONAL_INVOICE_FORMAT.decode(bytes); // the encoder only makes what the decoder accepts
  return bytes;
}
