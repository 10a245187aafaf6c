/**
 * Byte formats of the tax-function responses that carry more than one layout record:
 * the issued invoice, the stored invoice, the void receipt and the signed export batch.
 * Same conventions as the invoice encoding (big-endian, u16-prefixed byte strings).
 */
import { asciiBytes, ByteReader, ByteWriter, concatBytes, DecodeError } from "./bytes.ts";
import { TAX_CODE_DIGITS } from "./tax-code.ts";

export const INVOICE_CODE_LENGTH = 12;
export const MAX_SIGNATURE_BYTES = 80;

export interface IssuedInvoice {
  /** Card-wide issue sequence (1, 2, ...): the invoice record id. */
  seq: number;
  /** The canonical invoice encoding, as signed. */
  invoice: Uint8Array;
  taxCode: string;
  /** SM2 signature (DER) over signedInvoiceBytes(invoice, taxCode). */
  signature: Uint8Array;
}

/** What the card signs for an invoice: canonical invoice || tax control code (20 ASCII digits). */
export function signedInvoiceBytes(invoice: Uint8Array, taxCode: string): Uint8Array {
  return concatBytes(invoice, asciiBytes(taxCode));
}

function writeIssued(w: ByteWriter, x: IssuedInvoice): ByteWriter {
  if (!/^\d{20}$/.test(x.taxCode)) throw new RangeError("tax code must be 20 digits");
  return w.u32(x.seq).bytes(x.invoice).raw(asciiBytes(x.taxCode)).bytes(x.signature);
}

export function encodeIssued(x: IssuedInvoice): Uint8Array {
  return writeIssued(new ByteWriter(), x).finish();
}

function readIssued(r: ByteReader): IssuedInvoice {
  const seq = r.u32();
  const invoice = r.bytes();
  const taxCode = String.fromCharCode(...r.raw(TAX_CODE_DIGITS));
  if (!/^\d{20}$/.test(taxCode)) throw new DecodeError("issued invoice: tax code is not 20 digits");
  const signature = r.bytes(MAX_SIGNATURE_BYTES);
  return { seq, invoice, taxCode, signature };
}

export function decodeIssued(b: Uint8Array): IssuedInvoice {
  const r = new ByteReader(b, "issued invoice");
  const x = readIssued(r);
  r.end();
  return x;
}

export const InvoiceState = { NORMAL: 0, VOIDED: 1 } as const;

export interface StoredInvoice {
  state: number;
  /** Sum of red-letter invoices issued against this one, fen. */
  creditedFen: number;
  /** 1 once the bureau confirmed the issue event. */
  uploaded: number;
  voidedAt: number;
  issued: IssuedInvoice;
}

export function encodeStored(x: StoredInvoice): Uint8Array {
  // The issued part goes straight into the same writer (no second writer and copy).
  return writeIssued(new ByteWriter().u8(x.state).u64(x.creditedFen).u8(x.uploaded).u32(x.voidedAt), x.issued).finish();
}

export function decodeStored(b: Uint8Array): StoredInvoice {
  const r = new ByteReader(b, "stored invoice");
  const x = { state: r.u8(), creditedFen: r.u64(), uploaded: r.u8(), voidedAt: r.u32(), issued: readIssued(r) };
  r.end();
  return x;
}

/** The invoice key carried by VOID and READ INVOICE: code (12 ASCII digits) + u32 number. */
export function encodeInvoiceKey(code: string, number: number): Uint8Array {
  if (!/^\d{12}$/.test(code)) throw new RangeError("invoice code must be 12 digits");
  return new ByteWriter().raw(asciiBytes(code)).u32(number).finish();
}

export function decodeInvoiceKey(b: Uint8Array): { code: string; number: number } {
  const r = new ByteReader(b, "invoice key");
  const code = String.fromCharCode(...r.raw(INVOICE_CODE_LENGTH));
  const number = r.u32();
  r.end();
  if (!/^\d{12}$/.test(code)) throw new DecodeError("invoice key: code must be 12 digits");
  return { code, number };
}

/** What the card signs when it voids: "VOID" || code || u32 number || u32 voidedAt. */
export function signedVoidBytes(code: string, number: number, voidedAt: number): Uint8Array {
  return concatBytes(asciiBytes("VOID"), new ByteWriter().raw(asciiBytes(code)).u32(number).u32(voidedAt).finish());
}

export interface VoidReceipt {
  voidedAt: number;
  signature: Uint8Array;
}

export function encodeVoidReceipt(x: VoidReceipt): Uint8Array {
  return new ByteWriter().u32(x.voidedAt).bytes(x.signature).finish();
}

export function decodeVoidReceipt(b: Uint8Array): VoidReceipt {
  const r = new ByteReader(b, "void receipt");
  const x = { voidedAt: r.u32(), signature: r.bytes(MAX_SIGNATURE_BYTES) };
  r.end();
  return x;
}

export const EventKind = { ISSUE: 1, VOID: 2 } as const;

export type UploadEvent =
  | { seq: number; kind: typeof EventKind.ISSUE; at: number; issued: IssuedInvoice }
  | { seq: number; kind: typeof EventKind.VOID; at: number; code: string; number: number; signature: Uint8Array };

export interface ExportBatch {
  serial: string;
  events: UploadEvent[];
  /** 1 when more pending events follow the last one. */
  more: number;
  /** SM2 signature (DER) over every byte before it. */
  signature: Uint8Array;
}

export const EXPORT_BATCH_VERSION = 1;

/** The batch bytes the card signs (everything but the signature). */
export function encodeBatchBody(serial: string, events: readonly UploadEvent[], more: number): Uint8Array {
  const w = new ByteWriter().u8(EXPORT_BATCH_VERSION).text(serial).u16(events.length);
  for (const e of events) {
    w.u32(e.seq).u8(e.kind).u32(e.at);
    if (e.kind === EventKind.ISSUE) w.bytes(encodeIssued(e.issued));
    else w.raw(asciiBytes(e.code)).u32(e.number).bytes(e.signature);
  }
  return w.u8(more).finish();
}

export function encodeBatch(body: Uint8Array, signature: Uint8Array): Uint8Array {
  return new ByteWriter().raw(body).bytes(signature).finish();
}

/** Decode a batch; `body` is returned so the caller can verify the signature over it. */
export function decodeBatch(b: Uint8Array): ExportBatch & { body: Uint8Array } {
  const r = new ByteReader(b, "export batch");
  const version = r.u8();
  if (version !== EXPORT_BATCH_VERSION) throw new DecodeError(`export batch: unknown version ${version}`);
  const serial = r.text(64);
  const n = r.u16();
  const events: UploadEvent[] = [];
  for (let i = 0; i < n; i++) {
    const seq = r.u32();
    const kind = r.u8();
    const at = r.u32();
    if (kind === EventKind.ISSUE) events.push({ seq, kind, at, issued: decodeIssued(r.bytes()) });
    else if (kind === EventKind.VOID) {
      const code = String.fromCharCode(...r.raw(INVOICE_CODE_LENGTH));
      events.push({ seq, kind, at, code, number: r.u32(), signature: r.bytes(MAX_SIGNATURE_BYTES) });
    } else throw new DecodeError(`export batch: unknown event kind ${kind}`);
  }
  const more = r.u8();
  const body = b.slice(0, r.offset);
  const signature = r.bytes(MAX_SIGNATURE_BYTES);
  r.end();
  return { serial, events, more, signature, body };
}
