/**
 * Issuer-side (bureau) APDU builders and response parsers, transport-agnostic: each takes
 * `send(apdu) => Promise<response>` so the bureau, the host (relaying for the bureau) and
 * the personalize command share them. Failures throw TaxError with the TYUKEY code of the
 * status word.
 */
import { encodeCommand, splitResponse } from "./apdu.ts";
import { ByteWriter, concatBytes } from "./bytes.ts";
import { E, errorForSw, TaxError, describeSw } from "./errors.ts";
import { CHALLENGE_BYTES, CLA_ISO, INS, PinRef, TAX_AID } from "./interface.ts";
import { encodeLayout, encodeTable, INVOICE_TYPE_LAYOUT, LIMITS_LAYOUT, PURCHASE_LAYOUT, TAXPAYER_LAYOUT, type InvoiceTypeEntry, type OfflineLimits, type PurchaseRecord, type TaxpayerInfo, type LayoutValues } from "./layouts.ts";
import { authCryptogram, SmSession } from "./sm.ts";
import { hexSw, SW } from "./status-words.ts";

export type Send = (apdu: Uint8Array) => Promise<Uint8Array>;

const MAX_GET_RESPONSE_ROUNDS = 1024;

/**
 * Send one command and collect the whole answer: follows 61xx with GET RESPONSE and
 * repeats a 6Cxx command with the exact Le. Returns data and the final status word.
 */
export async function transceive(send: Send, apdu: Uint8Array): Promise<{ data: Uint8Array; sw: number }> {
  // Errors thrown by `send` (ChannelError, CardMuteError) propagate unchanged: the caller
  // decides (see errorForTransport). A malformed answer is +2.
  const exchange = async (a: Uint8Array) => {
    const out = await send(a);
    if (!(out instanceof Uint8Array) || out.length < 2) throw new TaxError(E.COMM, "response shorter than a status word");
    return splitResponse(out);
  };
  let r = await exchange(apdu);
  if ((r.sw & 0xff00) === SW.WRONG_LE) {
    const again = apdu.slice();
    again[again.length - 1] = r.sw & 0xff;
    r = await exchange(again);
  }
  const parts = [r.data];
  for (let i = 0; (r.sw & 0xff00) === SW.MORE_DATA; i++) {
    if (i >= MAX_GET_RESPONSE_ROUNDS) throw new TaxError(E.COMM, "card keeps answering 61xx");
    r = await exchange(encodeCommand({ cla: CLA_ISO, ins: INS.GET_RESPONSE, le: r.sw & 0xff || 256 }));
    parts.push(r.data);
  }
  return { data: concatBytes(...parts), sw: r.sw };
}

/**
 * The TYUKEY code of a transport failure: no card / mute card / no reader is +1
 * (TYUKEY_DEVICE_NOT_FOUND), anything else +2 (TYUKEY_DEVICE_COMM_ERROR).
 */
export function errorForTransport(error: unknown): number {
  if (error instanceof TaxError) return error.code;
  const e = error as { code?: unknown; name?: unknown };
  return e.code === "NO_CARD" || e.code === "UNAVAILABLE" || e.name === "CardMuteError" ? E.NOT_FOUND : E.COMM;
}

/** As transceive, but throws TaxError unless the status word is 9000. */
export async function call(send: Send, apdu: Uint8Array): Promise<Uint8Array> {
  const { data, sw } = await transceive(send, apdu);
  if (sw !== SW.OK) throw new TaxError(errorForSw(sw), `${hexSw(sw)}: ${describeSw(sw)}`, (sw & 0xfff0) === SW.PIN_WRONG ? sw & 0x0f : 0);
  return data;
}

export async function selectApplication(send: Send): Promise<void> {
  await call(send, encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 0x04, p2: 0x00, data: TAX_AID }));
}

export async function getChallenge(send: Send, length = CHALLENGE_BYTES): Promise<Uint8Array> {
  return call(send, encodeCommand({ cla: CLA_ISO, ins: INS.GET_CHALLENGE, le: length }));
}

/** Challenge-response with the card's bureau key; returns the session that wraps bureau writes. */
export async function bureauAuthenticate(send: Send, key: Uint8Array): Promise<SmSession> {
  const challenge = await getChallenge(send);
  await call(send, encodeCommand({ cla: CLA_ISO, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: authCryptogram(key, challenge) }));
  return new SmSession(key, challenge);
}

export async function verifyPin(send: Send, pin: string, ref: number = PinRef.USER): Promise<void> {
  await call(send, encodeCommand({ cla: CLA_ISO, ins: INS.VERIFY, p1: 0, p2: ref, data: new TextEncoder().encode(pin) }));
}

async function smCall(send: Send, s: SmSession, ins: number, plain: Uint8Array, p1 = 0): Promise<Uint8Array> {
  return call(send, s.wrap(ins, p1, 0, plain));
}

function lenPrefixed(...items: string[]): Uint8Array {
  const w = new ByteWriter();
  for (const s of items) {
    const b = new TextEncoder().encode(s);
    w.u8(b.length).raw(b);
  }
  return w.finish();
}

export const issuer = {
  setPins: (send: Send, s: SmSession, userPin: string, soPin: string) => smCall(send, s, INS.SET_PINS, lenPrefixed(userPin, soPin)),
  setClock: (send: Send, s: SmSession, unixSeconds: number) => smCall(send, s, INS.SET_CLOCK, new ByteWriter().u32(unixSeconds).finish()),
  loadTaxKey: (send: Send, s: SmSession, key: Uint8Array, algorithmId: string) => smCall(send, s, INS.LOAD_TAX_KEY, concatBytes(key, new TextEncoder().encode(algorithmId))),
  setBureauKey: (send: Send, s: SmSession, key: Uint8Array) => smCall(send, s, INS.SET_BUREAU_KEY, key),
  endPersonalization: (send: Send, s: SmSession) => smCall(send, s, INS.END_PERSONALIZATION, new Uint8Array(0)),
  setTaxpayer: (send: Send, s: SmSession, t: TaxpayerInfo) => smCall(send, s, INS.SET_TAXPAYER, encodeLayout(TAXPAYER_LAYOUT, t as unknown as LayoutValues)),
  /** Needs the user PIN verified as well (the paper: CA user PIN + ciphertext + MAC). */
  setInvoiceTypes: (send: Send, s: SmSession, types: readonly InvoiceTypeEntry[]) => smCall(send, s, INS.SET_INVOICE_TYPES, encodeTable(INVOICE_TYPE_LAYOUT, types as unknown as LayoutValues[])),
  syncPurchases: (send: Send, s: SmSession, records: readonly PurchaseRecord[]) => smCall(send, s, INS.SYNC_PURCHASES, encodeTable(PURCHASE_LAYOUT, records as unknown as LayoutValues[])),
  setLimits: (send: Send, s: SmSession, l: OfflineLimits) => smCall(send, s, INS.SET_LIMITS, encodeLayout(LIMITS_LAYOUT, l as unknown as LayoutValues)),
  confirmUpload: (send: Send, s: SmSession, lastEventSeq: number) => smCall(send, s, INS.CONFIRM_UPLOAD, new ByteWriter().u32(lastEventSeq).finish()),
  writeCert: (send: Send, s: SmSession, slot: number, der: Uint8Array) => smCall(send, s, INS.WRITE_CERT, der, slot),
  /**
   * Confirm every event up to `lastEventSeq`, repeating CONFIRM UPLOAD while the card
   * reports events left (it settles MAX_CONFIRM_PER_TX per command). Returns the commands sent.
   */
  async confirmAll(send: Send, s: SmSession, lastEventSeq: number): Promise<number> {
    for (let rounds = 1; rounds <= MAX_CONFIRM_ROUNDS; rounds++) {
      const left = await issuer.confirmUpload(send, s, lastEventSeq);
      if (left.length !== 4) throw new TaxError(E.COMM, "CONFIRM UPLOAD answers a u32");
      if (new DataView(left.buffer, left.byteOffset, 4).getUint32(0) === 0) return rounds;
    }
    throw new TaxError(E.COMM, "card keeps reporting unconfirmed events");
  },
};

/** Upper bound of CONFIRM UPLOAD rounds in confirmAll (16 events each). */
const MAX_CONFIRM_ROUNDS = 1 << 16;

export interface PersonalizeProfile {
  /** Key the card holds now (FACTORY_ISSUER_KEY for a new card). */
  issuerKey: Uint8Array;
  /** The card key the bureau derives for this card. */
  cardKey: Uint8Array;
  userPin: string;
  soPin: string;
  clockSeconds: number;
  taxKey: Uint8Array;
  taxCodeAlgorithm: string;
  taxpayer: TaxpayerInfo;
  invoiceTypes: readonly InvoiceTypeEntry[];
  purchases: readonly PurchaseRecord[];
  limits: OfflineLimits;
}

/**
 * The issuance sequence, in order: authenticate with the transport key, set PINs, clock,
 * tax-control key, taxpayer, invoice types (with the user PIN), stock, limits, then the
 * card key, and end personalization. Certificates are written afterwards (writeCert),
 * once the device key pair exists.
 */
export async function personalizeCard(send: Send, p: PersonalizeProfile): Promise<void> {
  await selectApplication(send);
  const s = await bureauAuthenticate(send, p.issuerKey);
  await issuer.setPins(send, s, p.userPin, p.soPin);
  await issuer.setClock(send, s, p.clockSeconds);
  await issuer.loadTaxKey(send, s, p.taxKey, p.taxCodeAlgorithm);
  await issuer.setTaxpayer(send, s, p.taxpayer);
  await verifyPin(send, p.userPin);
  await issuer.setInvoiceTypes(send, s, p.invoiceTypes);
  await issuer.syncPurchases(send, s, p.purchases);
  await issuer.setLimits(send, s, p.limits);
  await issuer.setBureauKey(send, s, p.cardKey);
  await issuer.endPersonalization(send, s);
}
