/**
 * Issuer messages: the bureau's secure-messaging commands for the Ukey (bureau writes:
 * stock, limits, upload confirmation). The card accepts them only inside a session opened
 * by EXTERNAL AUTHENTICATE over ITS challenge, so they must be built for a challenge the
 * host read from the card. The bureau API's `issuerMessages` (GET /sync) carries them when
 * the bureau builds them; until its builder receives the card challenge (and has a confirm
 * route), the host takes an `IssuerAgent`: `LocalIssuerAgent` is a stand-in for the
 * bureau's key-holding service, holding the bureau master key (tests, demo, CLI --profile).
 */
import {
  authCryptogram, deriveCardKey, encodeCommand, CLA_ISO, INS, SmSession, beijingDate, PurchaseStatus, SlotStatus, PURCHASE_LAYOUT, DEFAULT_OFFLINE_VALID_DAYS,
  encodeLayout, encodeTable, LIMITS_LAYOUT, ByteWriter,
  type PurchaseRecord, type InvoiceTypeEntry, type OfflineLimits, type LayoutValues,
} from "../tax/index.ts";

/** The signed sync payload of GET /sync (docs/bureau-api.md). */
export interface SyncPayload {
  version: 1;
  taxpayerId: string;
  deviceSerial: string;
  serverTime: number;
  stock: { invoiceCode: string; startNumber: number; count: number }[];
  limits: { offlineHours: number; maxInvoiceFen: number; maxOfflineTotalFen: number; maxOfflineCount: number };
  restrictions: { issuingLocked: boolean; allowedKinds: string[] };
  crlNumber: number;
}

export interface SyncMessageInput {
  challenge: Uint8Array;
  serial: string;
  payload: SyncPayload;
  /** The card's current purchase records and invoice types (for the invoice type of each batch). */
  purchases: readonly PurchaseRecord[];
  types: readonly InvoiceTypeEntry[];
}

export interface IssuerAgent {
  /** EXTERNAL AUTHENTICATE for `challenge`, then the secure-messaging writes of a sync. */
  syncMessages(input: SyncMessageInput): Promise<Uint8Array[]>;
  /** EXTERNAL AUTHENTICATE for `challenge`, then CONFIRM UPLOAD through `throughSeq`. */
  confirmMessages(input: { challenge: Uint8Array; serial: string; throughSeq: number }): Promise<Uint8Array[]>;
}

const SECONDS_PER_HOUR = 3600;
const HOURS_PER_DAY = 24;
const FULL_RATIO_PERMILLE = 1000;

/** The card's purchase table for a sync: the bureau's stock ranges, typed by the card's known batches. */
export function purchasesFromSync(payload: SyncPayload, current: readonly PurchaseRecord[], types: readonly InvoiceTypeEntry[]): PurchaseRecord[] {
  const defaultType = types.find((t) => t.status === SlotStatus.ENABLED)?.typeCode ?? "";
  const out: PurchaseRecord[] = [];
  for (const r of payload.stock) {
    if (!/^\d{12}$/.test(r.invoiceCode) || out.length >= PURCHASE_LAYOUT.records) continue;
    const known = current.find((p) => p.status !== PurchaseStatus.EMPTY && p.invoiceCode === r.invoiceCode && p.startNumber === r.startNumber);
    const typeCode = known?.typeCode ?? current.find((p) => p.invoiceCode === r.invoiceCode && p.typeCode)?.typeCode ?? defaultType;
    if (!typeCode) continue;
    out.push({
      typeCode, invoiceCode: r.invoiceCode, startNumber: r.startNumber, count: r.count, nextNumber: known?.nextNumber ?? r.startNumber,
      purchasedOn: known?.purchasedOn || beijingDate(Math.floor(payload.serverTime / 1000)), status: PurchaseStatus.ACTIVE,
    });
  }
  return out;
}

/** The card's offline limits for a sync. */
export function limitsFromSync(payload: SyncPayload): OfflineLimits {
  const l = payload.limits;
  return {
    offlineAllowed: payload.restrictions.issuingLocked ? 0 : 1,
    validDays: Math.max(1, Math.ceil(l.offlineHours / HOURS_PER_DAY)) || DEFAULT_OFFLINE_VALID_DAYS,
    validUntil: Math.floor(payload.serverTime / 1000) + l.offlineHours * SECONDS_PER_HOUR,
    maxOfflineCount: l.maxOfflineCount,
    maxOfflineAmountFen: l.maxOfflineTotalFen,
    maxOfflineRatioPermille: FULL_RATIO_PERMILLE,
    singleLimitFen: l.maxInvoiceFen,
  };
}

function externalAuthenticate(key: Uint8Array, challenge: Uint8Array): Uint8Array {
  return encodeCommand({ cla: CLA_ISO, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: authCryptogram(key, challenge) });
}

/** Stand-in for the bureau's message builder: derives the card key from the master key and the serial. */
export class LocalIssuerAgent implements IssuerAgent {
  constructor(private readonly masterKey: Uint8Array) {}

  async syncMessages(input: SyncMessageInput): Promise<Uint8Array[]> {
    const key = deriveCardKey(this.masterKey, input.serial);
    const s = new SmSession(key, input.challenge);
    const purchases = purchasesFromSync(input.payload, input.purchases, input.types);
    return [
      externalAuthenticate(key, input.challenge),
      s.wrap(INS.SYNC_PURCHASES, 0, 0, encodeTable(PURCHASE_LAYOUT, purchases as unknown as LayoutValues[])),
      s.wrap(INS.SET_LIMITS, 0, 0, encodeLayout(LIMITS_LAYOUT, limitsFromSync(input.payload) as unknown as LayoutValues)),
    ];
  }

  async confirmMessages(input: { challenge: Uint8Array; serial: string; throughSeq: number }): Promise<Uint8Array[]> {
    const key = deriveCardKey(this.masterKey, input.serial);
    const s = new SmSession(key, input.challenge);
    return [externalAuthenticate(key, input.challenge), s.wrap(INS.CONFIRM_UPLOAD, 0, 0, new ByteWriter().u32(input.throughSeq).finish())];
  }
}
