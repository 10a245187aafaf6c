/**
 * The bureau's invoice format from src/tax: what the Ukey signs for an invoice is
 * `canonical invoice encoding || tax control code (20 ASCII digits)` (signedInvoiceBytes),
 * and the tax control code is checked with the plug-in algorithm the device was loaded with
 * (default: the documented SM4/SM3 stand-in). See docs/invoice-encoding.md.
 */
import { sm2Sign } from "../crypto/index.ts";
import {
  decodeInvoice, DecodeError, encodeInvoice, formatInvoiceNumber, invoiceGrandTotal, InvoiceKind, signedInvoiceBytes, taxCodeAlgorithm,
  TAX_CODE_DIGITS, SM4_STANDIN_TAX_CODE, type Invoice,
} from "../tax/index.ts";
import { InvoiceFormatError, MAX_INVOICE_BYTES, type InvoiceFields, type InvoiceFormat } from "./invoice-format.ts";

const MS_PER_SECOND = 1000;

/** Splits signed invoice bytes into the canonical encoding and the tax control code. */
export function splitSignedInvoice(bytes: Uint8Array): { encoding: Uint8Array; taxCode: string } {
  if (bytes.length <= TAX_CODE_DIGITS || bytes.length > MAX_INVOICE_BYTES) throw new InvoiceFormatError(`signed invoice must be ${TAX_CODE_DIGITS + 1}-${MAX_INVOICE_BYTES} bytes`);
  const taxCode = String.fromCharCode(...bytes.subarray(bytes.length - TAX_CODE_DIGITS));
  if (!/^\d{20}$/.test(taxCode)) throw new InvoiceFormatError("signed invoice does not end in a 20-digit tax control code");
  return { encoding: bytes.subarray(0, bytes.length - TAX_CODE_DIGITS), taxCode };
}

export function invoiceFields(invoice: Invoice, taxCode: string): InvoiceFields {
  return {
    taxpayerId: invoice.taxpayerId,
    invoiceCode: invoice.invoiceCode,
    invoiceNumber: formatInvoiceNumber(invoice.invoiceNumber),
    kind: invoice.kind === InvoiceKind.RED ? "red" : "normal",
    issuedAt: invoice.issuedAt * MS_PER_SECOND,
    totalFen: invoiceGrandTotal(invoice),
    taxControlCode: taxCode,
  };
}

/** The src/tax format with the tax-code algorithm `algorithmId` (default: the SM4/SM3 stand-in). */
export function taxInvoiceFormat(algorithmId: string = SM4_STANDIN_TAX_CODE.id): InvoiceFormat {
  const algorithm = taxCodeAlgorithm(algorithmId);
  return {
    name: `tax-v1/${algorithm.id}`,
    decode(bytes) {
      const { encoding, taxCode } = splitSignedInvoice(bytes);
      let invoice: Invoice;
      try {
        invoice = decodeInvoice(encoding);
      } catch (error) {
        if (error instanceof DecodeError || error instanceof RangeError) throw new InvoiceFormatError(error.message);
        throw error;
      }
      if (invoice.invoiceCode === "" || invoice.invoiceNumber === 0 || invoice.issuedAt === 0) throw new InvoiceFormatError("a draft (no code, number or time) is not an issued invoice");
      if (signedInvoiceBytes(encoding, taxCode).length !== bytes.length) throw new InvoiceFormatError("signed invoice framing is inconsistent");
      return invoiceFields(invoice, taxCode);
    },
    verifyTaxControlCode(fields, bytes, taxControlKey) {
      const { encoding } = splitSignedInvoice(bytes);
      return algorithm.verify(taxControlKey, encoding, fields.taxControlCode);
    },
  };
}

export const TAX_INVOICE_FORMAT: InvoiceFormat = taxInvoiceFormat();

/**
 * What a Ukey does when it issues (tax control code, then SM2 signature over
 * `encoding || code`), for the bench, tests and simulated devices that do not run a COS.
 */
export function signInvoiceAsDevice(invoice: Invoice, taxKey: Uint8Array, device: { privateKey: Uint8Array; publicKey: Uint8Array }): { data: Uint8Array; signature: Uint8Array } {
  const encoding = encodeInvoice(invoice);
  const data = signedInvoiceBytes(encoding, SM4_STANDIN_TAX_CODE.generate(taxKey, encoding));
  return { data, signature: sm2Sign(device.privateKey, data, { publicKey: device.publicKey }) };
}
