/**
 * The bureau's messages for the Ukey, built with src/tax's issuer side: the host asks its
 * card for a challenge (GET CHALLENGE), sends it with the sync or upload request, and relays
 * the returned APDUs to the card in order. The first opens the bureau's secure-messaging
 * session (EXTERNAL AUTHENTICATE with the card key); the others are CLA 84 commands whose
 * data are SM4-encrypted and MACed under that session (src/tax/sm.ts).
 *
 * The card key is the one registered for the device, or SM4-ECB(bureau master key, serial)
 * (deriveCardKey), as personalization set it.
 */
import {
  authCryptogram, CHALLENGE_BYTES, CLA_ISO, DEFAULT_OFFLINE_VALID_DAYS, encodeCommand, encodeLayout, encodeTable, INS, LIMITS_LAYOUT,
  PURCHASE_LAYOUT, SmSession, ByteWriter, type LayoutValues, type OfflineLimits, type PurchaseRecord,
} from "../tax/index.ts";
import type { Limits, Restrictions, StockRange } from "./store.ts";

export interface IssuerMessage {
  /** What the message does on the Ukey, e.g. "SYNC_PURCHASES". */
  name: string;
  /** The command APDU, hex. */
  apdu: string;
}

const PURCHASE_ACTIVE = 1;
const SECONDS_PER_HOUR = 3600;
const HOURS_PER_DAY = 24;
const FULL_RATIO_PERMILLE = 1000;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Stock as the card's purchase records (a new batch starts at its first number; the card never moves a known one back). */
export function toPurchaseRecords(stock: readonly StockRange[]): PurchaseRecord[] {
  if (stock.length > PURCHASE_LAYOUT.records) throw new RangeError(`the card holds at most ${PURCHASE_LAYOUT.records} purchase records`);
  return stock.map((s) => ({
    typeCode: s.typeCode, invoiceCode: s.invoiceCode, startNumber: s.startNumber, count: s.count, nextNumber: s.startNumber,
    purchasedOn: s.purchasedOn, status: PURCHASE_ACTIVE,
  }));
}

/** The bureau's limits and restrictions as the card's offline-limits record, valid `offlineHours` from `nowMs`. */
export function toOfflineLimits(limits: Limits, restrictions: Restrictions, nowMs: number): OfflineLimits {
  const validDays = Math.max(1, Math.ceil(limits.offlineHours / HOURS_PER_DAY)) || DEFAULT_OFFLINE_VALID_DAYS;
  return {
    offlineAllowed: restrictions.issuingLocked ? 0 : 1,
    validDays,
    validUntil: Math.floor(nowMs / 1000) + limits.offlineHours * SECONDS_PER_HOUR,
    maxOfflineCount: limits.maxOfflineCount,
    maxOfflineAmountFen: limits.maxOfflineTotalFen,
    maxOfflineRatioPermille: FULL_RATIO_PERMILLE,
    singleLimitFen: limits.maxInvoiceFen,
  };
}

function open(cardKey: Uint8Array, challenge: Uint8Array): { session: SmSession; first: IssuerMessage } {
  if (challenge.length !== CHALLENGE_BYTES) throw new RangeError(`challenge must be ${CHALLENGE_BYTES} bytes`);
  const auth = encodeCommand({ cla: CLA_ISO, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: authCryptogram(cardKey, challenge) });
  return { session: new SmSession(cardKey, challenge), first: { name: "EXTERNAL_AUTHENTICATE", apdu: hex(auth) } };
}

/** EXTERNAL AUTHENTICATE, SYNC PURCHASES, SET LIMITS. */
export function syncMessages(cardKey: Uint8Array, challenge: Uint8Array, purchases: readonly PurchaseRecord[], limits: OfflineLimits): IssuerMessage[] {
  const { session, first } = open(cardKey, challenge);
  const table = encodeTable(PURCHASE_LAYOUT, purchases as unknown as LayoutValues[]);
  const record = encodeLayout(LIMITS_LAYOUT, limits as unknown as LayoutValues);
  return [
    first,
    { name: "SYNC_PURCHASES", apdu: hex(session.wrap(INS.SYNC_PURCHASES, 0, 0, table)) },
    { name: "SET_LIMITS", apdu: hex(session.wrap(INS.SET_LIMITS, 0, 0, record)) },
  ];
}

/** EXTERNAL AUTHENTICATE, CONFIRM UPLOAD through event `through`. */
export function confirmMessages(cardKey: Uint8Array, challenge: Uint8Array, through: number): IssuerMessage[] {
  const { session, first } = open(cardKey, challenge);
  return [first, { name: "CONFIRM_UPLOAD", apdu: hex(session.wrap(INS.CONFIRM_UPLOAD, 0, 0, new ByteWriter().u32(through).finish())) }];
}
