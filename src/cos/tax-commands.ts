/**
 * The 16 tax-control functions on the card. Reads check the user PIN; bureau writes
 * arrive unwrapped from secure messaging (ukey.ts checked session, MAC and counter).
 * Issue and red-letter run the machine's checks in the paper's order (tax-machine.ts),
 * then tax control code -> SM2 signature -> one atomic transaction that saves the invoice,
 * its upload event, the advanced purchase record and the counters.
 */
import {
  E, TaxError, INS, CLA_PROPRIETARY, CLA_SM, IssueMode, InvoiceKind, decodeInvoice, issuedInvoiceBytes, invoiceGrandTotal, taxCodeAlgorithm,
  signedInvoiceBytes, encodeIssued, encodeStored, decodeStored, encodeInvoiceKey, decodeInvoiceKey, signedVoidBytes, encodeVoidReceipt,
  encodeBatchBody, encodeBatch, EventKind, InvoiceState, encodeLayout, decodeLayout, encodeTable, decodeTable, TAXPAYER_LAYOUT,
  INVOICE_TYPE_LAYOUT, PURCHASE_LAYOUT, LIMITS_LAYOUT, OFFLINE_STATUS_LAYOUT, DEVICE_INFO_LAYOUT, SECURE_TIME_LAYOUT, SlotStatus,
  PurchaseStatus, MAX_EXPORT_EVENTS, KEY_USAGE_LIMIT, beijingText, ByteReader, ByteWriter,
  type Invoice, type StoredInvoice, type UploadEvent, type PurchaseRecord, type InvoiceTypeEntry, type TaxpayerInfo, type OfflineLimits,
  type LayoutValues,
} from "../tax/index.ts";
import { MAX_RECORD_BYTES, type TxOp } from "../flash-store/index.ts";
import { ClockState } from "../secure-clock/index.ts";
import { RT, LifeCycle, Loaded, COS_VERSION, withNextNumber, encodeSecrets, encodeCounters, encodeEvent, decodeEvent, Uploaded, type Counters, type EventRecord } from "./records.ts";
import { issueVerdict, lockReason, stateCode, type IssueFacts } from "./tax-machine.ts";
import type { Cmd, UkeyCos } from "./ukey.ts";
import { assert } from "./errors.ts";

/** Largest canonical invoice the card stores: a record holds it plus state, tax code and signature. */
export const MAX_STORED_INVOICE_BYTES = MAX_RECORD_BYTES - 256;
/** Events one CONFIRM UPLOAD transaction settles (3 ops each, within MAX_TX_OPS). */
export const MAX_CONFIRM_PER_TX = 16;

const EMPTY = new Uint8Array(0);

export class TaxCommands {
  static readonly INS: ReadonlyArray<readonly [number, number]> = [
    [INS.GET_TAXPAYER, CLA_PROPRIETARY], [INS.SET_TAXPAYER, CLA_SM], [INS.GET_INVOICE_TYPES, CLA_PROPRIETARY], [INS.SET_INVOICE_TYPES, CLA_SM],
    [INS.GET_PURCHASES, CLA_PROPRIETARY], [INS.SYNC_PURCHASES, CLA_SM], [INS.GET_LIMITS, CLA_PROPRIETARY], [INS.SET_LIMITS, CLA_SM],
    [INS.ISSUE, CLA_PROPRIETARY], [INS.VOID, CLA_PROPRIETARY], [INS.RED, CLA_PROPRIETARY], [INS.READ_INVOICE, CLA_PROPRIETARY],
    [INS.EXPORT_UNUPLOADED, CLA_PROPRIETARY], [INS.CONFIRM_UPLOAD, CLA_SM], [INS.GET_SECURE_TIME, CLA_PROPRIETARY], [INS.GET_DEVICE_INFO, CLA_PROPRIETARY],
  ];

  /** "code:number" -> invoice record id; built on first need, kept in step afterwards. */
  private index: Map<string, number> | undefined;

  constructor(private readonly card: UkeyCos) {}

  reset(): void {
    this.index = undefined;
  }

  run(c: Cmd): Uint8Array {
    const k = this.card;
    k.needP1P2(c, 0, 0);
    switch (c.ins) {
      case INS.GET_TAXPAYER: return this.readArea(c, k.data.taxpayer, () => encodeLayout(TAXPAYER_LAYOUT, k.data.taxpayer as unknown as LayoutValues));
      case INS.GET_INVOICE_TYPES: return this.readArea(c, k.data.types, () => encodeTable(INVOICE_TYPE_LAYOUT, k.data.types as unknown as LayoutValues[]));
      case INS.GET_PURCHASES: return this.readArea(c, k.data.purchases, () => encodeTable(PURCHASE_LAYOUT, k.data.purchases as unknown as LayoutValues[]));
      case INS.GET_LIMITS: return this.readArea(c, k.data.limits, () => this.limitsAndStatus());
      case INS.SET_TAXPAYER: return this.setTaxpayer(c);
      case INS.SET_INVOICE_TYPES: return this.setInvoiceTypes(c);
      case INS.SYNC_PURCHASES: return this.syncPurchases(c);
      case INS.SET_LIMITS: return this.setLimits(c);
      case INS.ISSUE: return this.issue(c, InvoiceKind.NORMAL);
      case INS.RED: return this.issue(c, InvoiceKind.RED);
      case INS.VOID: return this.void(c);
      case INS.READ_INVOICE: return this.readInvoice(c);
      case INS.EXPORT_UNUPLOADED: return this.exportUnuploaded(c);
      case INS.CONFIRM_UPLOAD: return this.confirmUpload(c);
      case INS.GET_SECURE_TIME: return this.secureTime(c);
      case INS.GET_DEVICE_INFO: return this.deviceInfo(c);
      default: throw new TaxError(E.INS);
    }
  }

  // ---------------------------------------------------------------- reads

  private readArea(c: Cmd, area: unknown, encode: () => Uint8Array): Uint8Array {
    this.card.needLength(c, 0);
    this.card.needUserPin();
    if (area === undefined) throw new TaxError(E.DATA_NOT_EXIST);
    return encode();
  }

  private limitsAndStatus(): Uint8Array {
    const k = this.card;
    const m = k.refreshMachine();
    const limits = k.data.limits as OfflineLimits;
    const c = k.data.counters;
    const status = {
      state: stateCode(m), lockReason: lockReason(m.context), lastOnlineAt: c.lastOnlineAt,
      windowEndsAt: Math.min(limits.validUntil, c.lastOnlineAt + limits.validDays * 86_400),
      pendingCount: c.pendingCount, offlineCount: c.offlineCount, offlineAmountFen: c.offlineAmountFen, issuedTotal: c.issuedTotal,
    };
    const out = new Uint8Array(LIMITS_LAYOUT.recordLength + OFFLINE_STATUS_LAYOUT.recordLength);
    out.set(encodeLayout(LIMITS_LAYOUT, limits as unknown as LayoutValues));
    out.set(encodeLayout(OFFLINE_STATUS_LAYOUT, status), LIMITS_LAYOUT.recordLength);
    return out;
  }

  private secureTime(c: Cmd): Uint8Array {
    this.card.needLength(c, 0);
    const state = this.card.clock.state();
    const seconds = state === ClockState.RUNNING ? this.card.clock.nowSeconds() : 0;
    return encodeLayout(SECURE_TIME_LAYOUT, { seconds, text: seconds ? beijingText(seconds) : "", clockState: state });
  }

  private deviceInfo(c: Cmd): Uint8Array {
    const k = this.card;
    k.needLength(c, 0);
    const st = k.store.stats();
    const kib = (n: number) => Math.max(0, Math.min(0xffff_ffff, Math.floor(Number.isFinite(n) ? n / 1024 : 0xffff_ffff)));
    return encodeLayout(DEVICE_INFO_LAYOUT, {
      serialNumber: k.data.secrets.serial, cosVersion: COS_VERSION, lifeCycle: k.data.secrets.lifeCycle,
      signCount: k.data.counters.signCount, signLimit: KEY_USAGE_LIMIT, userPinTries: k.data.pins.userTries, soPinTries: k.data.pins.soTries,
      clockState: k.clock.state(), batteryDaysLeft: Math.min(0xffff, k.clock.batteryDaysLeft()), storageFreeKiB: kib(st.freeBytes), storageUsedKiB: kib(st.usedBytes),
      invoicesStored: st.recordsByType[RT.INVOICE] ?? 0, reclaimedRecords: st.reclaimedRecords,
    });
  }

  // ---------------------------------------------------------------- bureau writes

  /** Bureau writes after personalization count as contact with the bureau (the offline window restarts). */
  private contactCounters(): Counters {
    const k = this.card;
    const c = k.data.counters;
    if (k.data.secrets.lifeCycle !== LifeCycle.PERSONALIZED || k.clock.state() !== 1) return c;
    return { ...c, lastOnlineAt: Math.max(c.lastOnlineAt, k.clock.nowSeconds()) };
  }

  private writeArea(type: number | undefined, plain: Uint8Array, loadedBit: number, apply: () => void, extra: TxOp[] = [], patch: Partial<Counters> = {}): Uint8Array {
    const k = this.card;
    const counters = { ...this.contactCounters(), ...patch };
    const ops: TxOp[] = [...(type === undefined ? [] : [k.put(type, 0, plain)]), k.put(RT.COUNTERS, 0, encodeCounters(counters)), ...extra];
    const secrets = { ...k.data.secrets, loaded: k.data.secrets.loaded | loadedBit };
    if (secrets.loaded !== k.data.secrets.loaded) ops.push(k.put(RT.SECRETS, 0, encodeSecrets(secrets)));
    k.commit(ops, () => {
      k.data.secrets = secrets;
      k.data.counters = counters;
      apply();
      k.invalidateMachine();
    });
    return EMPTY;
  }

  private setTaxpayer(c: Cmd): Uint8Array {
    const k = this.card;
    k.needLength(c, TAXPAYER_LAYOUT.recordLength);
    const t = decodeLayout(TAXPAYER_LAYOUT, c.data) as unknown as TaxpayerInfo;
    if (!t.taxpayerId || !t.machineNumber) throw new TaxError(E.PARAM, "taxpayer ID and machine number are required");
    if (t.certStatus > 1) throw new TaxError(E.PARAM, "certStatus is 0 or 1");
    if (k.data.taxpayer && k.data.taxpayer.taxpayerId !== t.taxpayerId && k.data.counters.pendingCount > 0) throw new TaxError(E.HAVE_NOTRANCE_DATA, "upload first");
    return this.writeArea(RT.TAXPAYER, encodeLayout(TAXPAYER_LAYOUT, t as unknown as LayoutValues), Loaded.TAXPAYER, () => (k.data.taxpayer = t));
  }

  private setInvoiceTypes(c: Cmd): Uint8Array {
    const k = this.card;
    k.needUserPin();
    k.needLength(c, INVOICE_TYPE_LAYOUT.recordLength * INVOICE_TYPE_LAYOUT.records);
    const types = decodeTable(INVOICE_TYPE_LAYOUT, c.data) as unknown as InvoiceTypeEntry[];
    for (const t of types) {
      if (t.status > SlotStatus.SUSPENDED) throw new TaxError(E.PARAM, "status is 0..2");
      if (t.status !== SlotStatus.EMPTY && !/^[\x21-\x7e]{5}$/.test(t.typeCode)) throw new TaxError(E.PARAM, "type code is 5 ASCII");
    }
    return this.writeArea(RT.INVOICE_TYPES, c.data.slice(), Loaded.TYPES, () => (k.data.types = types));
  }

  private syncPurchases(c: Cmd): Uint8Array {
    const k = this.card;
    k.needLength(c, PURCHASE_LAYOUT.recordLength * PURCHASE_LAYOUT.records);
    const incoming = decodeTable(PURCHASE_LAYOUT, c.data) as unknown as PurchaseRecord[];
    const merged = incoming.map((r) => this.mergePurchase(r));
    checkNoOverlap(merged);
    const slots = merged.map((p, i) => k.put(RT.PURCHASES, i, encodeLayout(PURCHASE_LAYOUT, p as unknown as LayoutValues)));
    return this.writeArea(undefined, EMPTY, Loaded.PURCHASES, () => (k.data.purchases = merged), slots, { nextNumbers: merged.map((p) => p.nextNumber) });
  }

  /** A batch the card already knows never moves its next number back. */
  private mergePurchase(r: PurchaseRecord): PurchaseRecord {
    if (r.status === PurchaseStatus.EMPTY) return { ...emptyPurchase() };
    if (r.status > PurchaseStatus.WITHDRAWN) throw new TaxError(E.PARAM, "purchase status is 0..3");
    if (!/^\d{12}$/.test(r.invoiceCode) || !/^[\x21-\x7e]{5}$/.test(r.typeCode)) throw new TaxError(E.PARAM, "invoice code 12 digits, type code 5 ASCII");
    if (r.startNumber < 1 || r.count < 1 || r.startNumber + r.count - 1 > 99_999_999) throw new TaxError(E.PARAM, "numbers are 1..99999999");
    if (r.nextNumber < r.startNumber || r.nextNumber > r.startNumber + r.count) throw new TaxError(E.PARAM, "next number outside the batch");
    const known = this.card.data.purchases?.find((p) => p.status !== PurchaseStatus.EMPTY && p.invoiceCode === r.invoiceCode && p.startNumber === r.startNumber);
    if (known && known.count !== r.count) throw new TaxError(E.PARAM, "a known batch cannot change its size");
    const nextNumber = Math.max(r.nextNumber, known?.nextNumber ?? 0);
    const usedUp = nextNumber >= r.startNumber + r.count;
    return { ...r, nextNumber, status: r.status === PurchaseStatus.WITHDRAWN ? r.status : usedUp ? PurchaseStatus.USED_UP : PurchaseStatus.ACTIVE };
  }

  private setLimits(c: Cmd): Uint8Array {
    const k = this.card;
    k.needLength(c, LIMITS_LAYOUT.recordLength);
    const l = decodeLayout(LIMITS_LAYOUT, c.data) as unknown as OfflineLimits;
    if (l.offlineAllowed > 1) throw new TaxError(E.PARAM, "offlineAllowed is 0 or 1");
    if (l.maxOfflineRatioPermille > 1000) throw new TaxError(E.PARAM, "ratio is per mille, 0..1000");
    return this.writeArea(RT.LIMITS, encodeLayout(LIMITS_LAYOUT, l as unknown as LayoutValues), Loaded.LIMITS, () => (k.data.limits = l));
  }

  // ---------------------------------------------------------------- issue and red-letter

  private issue(c: Cmd, kind: number): Uint8Array {
    const k = this.card;
    k.needUserPin();
    k.needPersonalized();
    k.needLength(c, 1, 65535);
    const draft = decodeInvoice(c.data);
    if (draft.kind !== kind) throw new TaxError(E.PARAM, kind === InvoiceKind.RED ? "RED takes a red-letter draft" : "ISSUE takes a normal draft");
    if (draft.invoiceCode !== "" || draft.invoiceNumber !== 0 || draft.issuedAt !== 0) throw new TaxError(E.PARAM, "a draft leaves code, number and time to the card");
    const type = k.data.types?.find((t) => t.typeCode === draft.typeCode && t.status !== SlotStatus.EMPTY);
    if (type && type.maxLines > 0 && draft.lines.length > type.maxLines) throw new TaxError(E.PARAM, `at most ${type.maxLines} lines for this type`);
    const original = kind === InvoiceKind.RED ? this.find(draft.originalCode, draft.originalNumber) : undefined;
    const grand = invoiceGrandTotal(draft);
    const batchIndex = this.batchFor(draft.typeCode);
    const batch = batchIndex >= 0 ? (k.data.purchases?.[batchIndex] as PurchaseRecord) : undefined;
    const now = k.secureNow();
    const clockOk = now !== undefined;
    const tp = k.data.taxpayer;
    const facts: IssueFacts = {
      now: now ?? 0, clockOk, mode: draft.mode,
      taxpayerMatch: !!tp && tp.taxpayerId === draft.taxpayerId && tp.loginAccount === draft.loginAccount && tp.machineNumber === draft.machineNumber,
      typeEnabled: !!type && type.status === SlotStatus.ENABLED && !typeDateOutside(type, now ?? 0, clockOk),
      stockLeft: batch ? batch.startNumber + batch.count - batch.nextNumber : 0,
      batchCount: batch?.count ?? 0,
      grandTotal: grand,
      typeSingleLimit: type?.singleLimitFen ?? 0,
    };
    if (kind === InvoiceKind.RED) facts.red = { originalExists: !!original, creditAllowed: !!original && creditAllowed(original.stored, grand) };
    const verdict = issueVerdict(k.taxContext(), facts);
    if (verdict !== 0) throw new TaxError(verdict);
    return this.commitIssue(draft, c.data, batchIndex, now as number, grand, original);
  }

  /** The first active batch of this type with numbers left. */
  private batchFor(typeCode: string): number {
    const list = this.card.data.purchases ?? [];
    return list.findIndex((p) => p.status === PurchaseStatus.ACTIVE && p.typeCode === typeCode && p.nextNumber < p.startNumber + p.count);
  }

  /** `draftBytes`: the draft as received, which decodeInvoice accepted (so canonical). */
  private commitIssue(draft: Invoice, draftBytes: Uint8Array, batchIndex: number, now: number, grand: number, original: { seq: number; stored: StoredInvoice } | undefined): Uint8Array {
    const k = this.card;
    const purchases = (k.data.purchases as PurchaseRecord[]).slice();
    const batch = purchases[batchIndex] as PurchaseRecord;
    const invoice: Invoice = { ...draft, invoiceCode: batch.invoiceCode, invoiceNumber: batch.nextNumber, issuedAt: now };
    const bytes = issuedInvoiceBytes(draftBytes, invoice.invoiceCode, invoice.invoiceNumber, invoice.issuedAt);
    if (bytes.length > MAX_STORED_INVOICE_BYTES) throw new TaxError(E.LENGTH, `invoice of ${bytes.length} bytes does not fit a record (at most ${MAX_STORED_INVOICE_BYTES})`);
    const taxCode = taxCodeAlgorithm(k.data.secrets.taxAlgorithm).generate(k.data.secrets.taxKey, bytes);
    const signature = k.signBytes(signedInvoiceBytes(bytes, taxCode));
    const c0 = k.data.counters;
    const seq = c0.invoiceSeq + 1;
    const eventSeq = c0.eventSeq + 1;
    const offline = draft.mode === IssueMode.OFFLINE;
    const counters: Counters = {
      ...c0, invoiceSeq: seq, eventSeq, pendingCount: c0.pendingCount + 1, issuedTotal: c0.issuedTotal + 1, signCount: c0.signCount + 1, lastEventAt: now,
      offlineCount: c0.offlineCount + (offline ? 1 : 0), offlineAmountFen: c0.offlineAmountFen + (offline ? grand : 0),
    };
    const next = batch.nextNumber + 1;
    assert(batch.nextNumber >= batch.startNumber && next <= batch.startNumber + batch.count, "the issued number lies inside its batch");
    assert(counters.pendingCount === c0.pendingCount + 1 && counters.invoiceSeq === c0.invoiceSeq + 1, "one invoice, one pending event");
    assert(invoice.issuedAt >= c0.lastEventAt, "invoice time never goes back");
    purchases[batchIndex] = withNextNumber(batch, next);
    counters.nextNumbers = c0.nextNumbers.map((n, i) => (i === batchIndex ? next : n));
    const issued = { seq, invoice: bytes, taxCode, signature };
    const stored: StoredInvoice = { state: InvoiceState.NORMAL, creditedFen: 0, uploaded: 0, voidedAt: 0, issued };
    const ops: TxOp[] = [
      k.put(RT.INVOICE, seq, encodeStored(stored)),
      k.put(RT.EVENT, eventSeq, encodeEvent({ kind: EventKind.ISSUE, at: now, invoiceSeq: seq, signature: EMPTY })),
      k.put(RT.COUNTERS, 0, encodeCounters(counters)),
    ];
    let credited: StoredInvoice | undefined;
    if (original) {
      credited = { ...original.stored, creditedFen: original.stored.creditedFen + grand };
      ops.push(...this.invoiceOps(original.seq, credited));
    }
    k.commit(ops, () => {
      k.data.counters = counters;
      k.data.purchases = purchases;
      this.index?.set(keyOf(invoice.invoiceCode, invoice.invoiceNumber), seq);
      k.invalidateMachine();
    });
    return encodeIssued(issued);
  }

  /** Put an invoice record, re-marking it reclaimable when everything about it was uploaded. */
  private invoiceOps(seq: number, s: StoredInvoice): TxOp[] {
    const ops: TxOp[] = [this.card.put(RT.INVOICE, seq, encodeStored(s))];
    if (settled(s)) ops.push({ kind: "reclaimable", type: RT.INVOICE, id: seq });
    return ops;
  }

  // ---------------------------------------------------------------- void, read

  private void(c: Cmd): Uint8Array {
    const k = this.card;
    k.needUserPin();
    k.needPersonalized();
    k.needLength(c, 16);
    const key = decodeInvoiceKey(c.data);
    const found = this.find(key.code, key.number);
    if (!found) throw new TaxError(E.DATA_NOT_EXIST, "no such invoice on the card");
    const now = k.now();
    const s = found.stored;
    if (s.state === InvoiceState.VOIDED) throw new TaxError(E.INVOICE_STATE, "already voided");
    if (s.creditedFen > 0) throw new TaxError(E.INVOICE_STATE, "credited by a red-letter invoice; cannot void");
    const released = this.releaseCredit(s);
    const signature = k.signBytes(signedVoidBytes(key.code, key.number, now));
    const voided: StoredInvoice = { ...s, state: InvoiceState.VOIDED, voidedAt: now, uploaded: s.uploaded & ~Uploaded.VOID };
    const c0 = k.data.counters;
    const counters: Counters = { ...c0, eventSeq: c0.eventSeq + 1, pendingCount: c0.pendingCount + 1, signCount: c0.signCount + 1, lastEventAt: now };
    k.commit([
      ...this.invoiceOps(found.seq, voided),
      ...released,
      k.put(RT.EVENT, counters.eventSeq, encodeEvent({ kind: EventKind.VOID, at: now, invoiceSeq: found.seq, signature })),
      k.put(RT.COUNTERS, 0, encodeCounters(counters)),
    ], () => {
      k.data.counters = counters;
      k.invalidateMachine();
    });
    return encodeVoidReceipt({ voidedAt: now, signature });
  }

  /**
   * Voiding a red-letter invoice cancels its credit: the original's credited amount goes
   * down by the red invoice's total (when the original is still on the card).
   */
  private releaseCredit(red: StoredInvoice): TxOp[] {
    const inv = decodeInvoice(red.issued.invoice);
    if (inv.kind !== InvoiceKind.RED) return [];
    const original = this.find(inv.originalCode, inv.originalNumber);
    if (!original) return [];
    const creditedFen = Math.max(0, original.stored.creditedFen - invoiceGrandTotal(inv));
    return this.invoiceOps(original.seq, { ...original.stored, creditedFen });
  }

  private readInvoice(c: Cmd): Uint8Array {
    const k = this.card;
    k.needUserPin();
    k.needLength(c, 16);
    const key = decodeInvoiceKey(c.data);
    const found = this.find(key.code, key.number);
    if (!found) throw new TaxError(E.DATA_NOT_EXIST, "no such invoice on the card");
    return encodeStored(found.stored);
  }

  /** Look an invoice up by code and number (the index is built once per power-on). */
  private find(code: string, number: number): { seq: number; stored: StoredInvoice } | undefined {
    const k = this.card;
    if (!this.index) {
      this.index = new Map();
      for (const id of k.store.ids(RT.INVOICE)) {
        const s = this.load(id);
        if (s) {
          const inv = decodeInvoice(s.issued.invoice);
          this.index.set(keyOf(inv.invoiceCode, inv.invoiceNumber), id);
        }
      }
    }
    const seq = this.index.get(keyOf(code, number));
    if (seq === undefined) return undefined;
    const stored = this.load(seq);
    if (!stored) {
      this.index.delete(keyOf(code, number)); // reclaimed by rollover
      return undefined;
    }
    return { seq, stored };
  }

  private load(seq: number): StoredInvoice | undefined {
    const b = this.card.read(RT.INVOICE, seq);
    return b ? decodeStored(b) : undefined;
  }

  // ---------------------------------------------------------------- upload

  private pendingEventIds(from: number): number[] {
    const k = this.card;
    const first = Math.max(from, k.data.counters.confirmedThrough + 1);
    return k.store.ids(RT.EVENT).filter((id) => id >= first);
  }

  private exportUnuploaded(c: Cmd): Uint8Array {
    const k = this.card;
    k.needUserPin();
    k.needPersonalized();
    k.needLength(c, 4);
    const from = new ByteReader(c.data).u32();
    const ids = this.pendingEventIds(from);
    if (ids.length === 0) throw new TaxError(E.DATA_NOT_EXIST, "nothing to upload");
    const take = ids.slice(0, MAX_EXPORT_EVENTS);
    const events = take.map((id) => this.uploadEvent(id));
    const body = encodeBatchBody(k.data.secrets.serial, events, ids.length > take.length ? 1 : 0);
    const signature = k.signBytes(body);
    const counters = { ...k.data.counters, signCount: k.data.counters.signCount + 1 };
    k.commit([k.put(RT.COUNTERS, 0, encodeCounters(counters))], () => {
      k.data.counters = counters;
      k.invalidateMachine();
    });
    return encodeBatch(body, signature);
  }

  private uploadEvent(id: number): UploadEvent {
    const e = this.event(id);
    const s = this.load(e.invoiceSeq);
    if (!s) throw new TaxError(E.DATA_NOT_EXIST, `invoice ${e.invoiceSeq} of event ${id} is missing`);
    if (e.kind === EventKind.ISSUE) return { seq: id, kind: EventKind.ISSUE, at: e.at, issued: s.issued };
    const inv = decodeInvoice(s.issued.invoice);
    return { seq: id, kind: EventKind.VOID, at: e.at, code: inv.invoiceCode, number: inv.invoiceNumber, signature: e.signature };
  }

  private event(id: number): EventRecord {
    const b = this.card.read(RT.EVENT, id);
    if (!b) throw new TaxError(E.DATA_NOT_EXIST, `event ${id} missing`);
    return decodeEvent(b);
  }

  private confirmUpload(c: Cmd): Uint8Array {
    const k = this.card;
    k.needPersonalized();
    k.needLength(c, 4);
    const through = new ByteReader(c.data).u32();
    const c0 = k.data.counters;
    if (through > c0.eventSeq) throw new TaxError(E.PARAM, "confirms events the card never made");
    const ids = this.pendingEventIds(0).filter((id) => id <= through);
    const take = ids.slice(0, MAX_CONFIRM_PER_TX);
    const touched = new Map<number, StoredInvoice>();
    const ops: TxOp[] = [];
    for (const id of take) {
      const e = this.event(id);
      const s = touched.get(e.invoiceSeq) ?? this.load(e.invoiceSeq);
      ops.push({ kind: "delete", type: RT.EVENT, id });
      if (s) touched.set(e.invoiceSeq, { ...s, uploaded: s.uploaded | (e.kind === EventKind.ISSUE ? Uploaded.ISSUE : Uploaded.VOID) });
    }
    for (const [seq, s] of touched) ops.push(...this.invoiceOps(seq, s));
    const pendingCount = c0.pendingCount - take.length;
    assert(pendingCount >= 0, "confirmed no more events than were pending");
    const confirmedThrough = take.length ? (take[take.length - 1] as number) : c0.confirmedThrough;
    const base = this.contactCounters();
    const counters: Counters = { ...base, pendingCount, confirmedThrough, ...(pendingCount === 0 ? { offlineCount: 0, offlineAmountFen: 0 } : {}) };
    ops.push(k.put(RT.COUNTERS, 0, encodeCounters(counters)));
    k.commit(ops, () => {
      k.data.counters = counters;
      k.invalidateMachine();
    });
    return new ByteWriter().u32(ids.length - take.length).finish();
  }
}

function keyOf(code: string, number: number): string {
  return `${code}:${number}`;
}

function emptyPurchase(): PurchaseRecord {
  return { typeCode: "", invoiceCode: "", startNumber: 0, count: 0, nextNumber: 0, purchasedOn: "", status: PurchaseStatus.EMPTY };
}

/** Two batches of one invoice code may not share a number: numbers are never reused. */
function checkNoOverlap(list: readonly PurchaseRecord[]): void {
  const live = list.filter((p) => p.status !== PurchaseStatus.EMPTY);
  for (let i = 0; i < live.length; i++) {
    for (let j = i + 1; j < live.length; j++) {
      const a = live[i] as PurchaseRecord;
      const b = live[j] as PurchaseRecord;
      if (a.invoiceCode === b.invoiceCode && a.startNumber < b.startNumber + b.count && b.startNumber < a.startNumber + a.count) throw new TaxError(E.PARAM, "purchase batches overlap");
    }
  }
}

/** Everything about the invoice is at the bureau: it may be reclaimed by rollover. */
function settled(s: StoredInvoice): boolean {
  return (s.uploaded & Uploaded.ISSUE) !== 0 && (s.state !== InvoiceState.VOIDED || (s.uploaded & Uploaded.VOID) !== 0);
}

function creditAllowed(original: StoredInvoice, redTotal: number): boolean {
  if (original.state === InvoiceState.VOIDED) return false;
  const inv = decodeInvoice(original.issued.invoice);
  if (inv.kind !== InvoiceKind.NORMAL) return false;
  return original.creditedFen + redTotal <= invoiceGrandTotal(inv);
}

/** The invoice type's validity dates against the secure clock (Beijing date). */
function typeDateOutside(t: InvoiceTypeEntry, now: number, clockOk: boolean): boolean {
  if (!clockOk) return false;
  const today = beijingText(now).slice(0, 8);
  return (t.validFrom !== "" && today < t.validFrom) || (t.validTo !== "" && today > t.validTo);
}

