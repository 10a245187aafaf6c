/**
 * The COS's records in the RecordStore (all sealed by the Vault). Types below 0x40 are
 * critical (two copies). docs/storage-layout.md lists them with their layouts.
 */
import { ByteReader, ByteWriter, PurchaseStatus, type PurchaseRecord } from "../tax/index.ts";

export const COS_VERSION = "1.0.0";

export const RT = {
  SECRETS: 0x01,
  // 0x02: the secure clock's anchor (src/secure-clock)
  PINS: 0x03,
  COUNTERS: 0x04,
  TAXPAYER: 0x05,
  INVOICE_TYPES: 0x06,
  /** id = slot 0..9, one 48-byte purchase record each (an issue rewrites only its batch). */
  PURCHASES: 0x07,
  LIMITS: 0x08,
  CERTS: 0x09,
  INVOICE: 0x40,
  EVENT: 0x41,
} as const;

export const LifeCycle = { FACTORY: 0, PERSONALIZED: 1 } as const;

/** Personalization items loaded so far (bit flags of Secrets.loaded). */
export const Loaded = { PINS: 1, CLOCK: 2, TAX_KEY: 4, TAXPAYER: 8, TYPES: 16, PURCHASES: 32, LIMITS: 64, CARD_KEY: 128 } as const;
export const REQUIRED_FOR_END = Loaded.PINS | Loaded.CLOCK | Loaded.TAX_KEY | Loaded.TAXPAYER | Loaded.TYPES | Loaded.LIMITS;

export interface Secrets {
  lifeCycle: number;
  loaded: number;
  serial: string;
  bureauKey: Uint8Array;
  taxKey: Uint8Array;
  taxAlgorithm: string;
  signPrivate: Uint8Array;
  signPublic: Uint8Array;
  userPinHash: Uint8Array;
  soPinHash: Uint8Array;
}

export function encodeSecrets(s: Secrets): Uint8Array {
  return new ByteWriter().u8(s.lifeCycle).u16(s.loaded).text(s.serial).bytes(s.bureauKey).bytes(s.taxKey).text(s.taxAlgorithm)
    .bytes(s.signPrivate).bytes(s.signPublic).bytes(s.userPinHash).bytes(s.soPinHash).finish();
}

export function decodeSecrets(b: Uint8Array): Secrets {
  const r = new ByteReader(b, "secrets");
  const s = { lifeCycle: r.u8(), loaded: r.u16(), serial: r.text(), bureauKey: r.bytes(), taxKey: r.bytes(), taxAlgorithm: r.text(), signPrivate: r.bytes(), signPublic: r.bytes(), userPinHash: r.bytes(), soPinHash: r.bytes() };
  r.end();
  return s;
}

export interface Pins {
  userTries: number;
  soTries: number;
}

export const encodePins = (p: Pins) => Uint8Array.of(p.userTries, p.soTries);
export function decodePins(b: Uint8Array): Pins {
  if (b.length !== 2) throw new RangeError("pins record must be 2 bytes");
  return { userTries: b[0] as number, soTries: b[1] as number };
}

export interface Counters {
  /** Last invoice record id issued (0 = none). */
  invoiceSeq: number;
  /** Last upload event id created. */
  eventSeq: number;
  /** Highest event id the bureau confirmed. */
  confirmedThrough: number;
  pendingCount: number;
  offlineCount: number;
  offlineAmountFen: number;
  issuedTotal: number;
  lastOnlineAt: number;
  signCount: number;
  /** Secure time of the last issue or void: the next one may not be earlier (rollback across power cycles). */
  lastEventAt: number;
  /**
   * The live next invoice number of each purchase slot (0 for an empty slot). An issue
   * advances it here, in the one critical record it writes anyway, instead of rewriting
   * the slot's purchase record (a second critical record, two more copies in flash).
   */
  nextNumbers: number[];
}

export const PURCHASE_SLOTS = 10;

export const ZERO_COUNTERS: Counters = { invoiceSeq: 0, eventSeq: 0, confirmedThrough: 0, pendingCount: 0, offlineCount: 0, offlineAmountFen: 0, issuedTotal: 0, lastOnlineAt: 0, signCount: 0, lastEventAt: 0, nextNumbers: new Array<number>(PURCHASE_SLOTS).fill(0) };

export function encodeCounters(c: Counters): Uint8Array {
  const w = new ByteWriter().u32(c.invoiceSeq).u32(c.eventSeq).u32(c.confirmedThrough).u32(c.pendingCount).u32(c.offlineCount)
    .u64(c.offlineAmountFen).u32(c.issuedTotal).u32(c.lastOnlineAt).u32(c.signCount).u32(c.lastEventAt);
  if (c.nextNumbers.length !== PURCHASE_SLOTS) throw new RangeError(`nextNumbers holds ${PURCHASE_SLOTS} slots`);
  for (const n of c.nextNumbers) w.u32(n);
  return w.finish();
}

export function decodeCounters(b: Uint8Array): Counters {
  const r = new ByteReader(b, "counters");
  const c = { invoiceSeq: r.u32(), eventSeq: r.u32(), confirmedThrough: r.u32(), pendingCount: r.u32(), offlineCount: r.u32(), offlineAmountFen: r.u64(), issuedTotal: r.u32(), lastOnlineAt: r.u32(), signCount: r.u32(), lastEventAt: r.u32(),
    nextNumbers: Array.from({ length: PURCHASE_SLOTS }, () => r.u32()) };
  r.end();
  return c;
}

/** An upload event record: what the export batch carries. */
export interface EventRecord {
  kind: number;
  at: number;
  invoiceSeq: number;
  /** Void events: the void signature. */
  signature: Uint8Array;
}

export function encodeEvent(e: EventRecord): Uint8Array {
  return new ByteWriter().u8(e.kind).u32(e.at).u32(e.invoiceSeq).bytes(e.signature).finish();
}

export function decodeEvent(b: Uint8Array): EventRecord {
  const r = new ByteReader(b, "event");
  const e = { kind: r.u8(), at: r.u32(), invoiceSeq: r.u32(), signature: r.bytes() };
  r.end();
  return e;
}

/** Uploaded flags of a stored invoice. */
export const Uploaded = { ISSUE: 1, VOID: 2 } as const;

/** A purchase slot with its live next number (never behind the synced one); used up when it reaches the end. */
export function withNextNumber(p: PurchaseRecord, next: number): PurchaseRecord {
  if (p.status === PurchaseStatus.EMPTY) return p;
  const nextNumber = Math.max(p.nextNumber, next);
  const usedUp = nextNumber >= p.startNumber + p.count;
  return { ...p, nextNumber, status: p.status === PurchaseStatus.ACTIVE && usedUp ? PurchaseStatus.USED_UP : p.status };
}

