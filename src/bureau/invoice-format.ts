/**
 * The invoice bytes the bureau receives are what the Ukey signed. Their encoding and the
 * tax-control-code algorithm come from src/tax (tax-format.ts); the bureau reaches them
 * through this small plug-in interface, so a vendor's real format or algorithm can replace
 * them without touching the receiver.
 */

export interface InvoiceFields {
  taxpayerId: string;
  /** The Ukey's serial, when the format carries it (src/tax's does not: the certificate names the device). */
  deviceSerial?: string;
  /** 发票代码: 12 digits. */
  invoiceCode: string;
  /** 发票号码: 8 digits as printed. */
  invoiceNumber: string;
  /** "normal" (blue) or "red" (red-letter credit invoice). */
  kind: string;
  /** Issue time from the Ukey's secure clock, ms since the epoch. */
  issuedAt: number;
  /** Grand total (价税合计) in integer fen. */
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

/** Largest signed invoice: src/tax's largest encoding (16 KiB) plus the 20-digit tax control code. */
export const MAX_INVOICE_BYTES = 16_384 + 20;
export const INVOICE_KINDS = ["normal", "red"] as const;
