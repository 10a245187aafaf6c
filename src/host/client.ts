/**
 * UkeyClient: the typed host API of the Ukey over any ApduChannel (simulator in process,
 * USB/IP, PC/SC or a real device). One method per general command and per tax-control
 * function (UKEY_*), built with src/tax's codec. Every failure is a UkeyError carrying the
 * TYUKEY code, its C name, the status word (null for the host-side +1/+2) and a message:
 *   +1 DEVICE_NOT_FOUND  the channel reports no card / disconnected / timeout
 *   +2 DEVICE_COMM_ERROR the answer is garbage (under 2 bytes, undecodable data)
 */
import {
  CLA_ISO, CLA_PROPRIETARY, INS, PinRef, E, SW, TAX_AID, CHALLENGE_BYTES, encodeCommand, transceive, errorForSw, describeSw, taxErrorInfo, hexSw,
  decodeLayout, decodeTable, encodeInvoice, decodeIssued, decodeStored, decodeVoidReceipt, decodeBatch, encodeInvoiceKey, ByteWriter, ByteReader,
  TAXPAYER_LAYOUT, INVOICE_TYPE_LAYOUT, PURCHASE_LAYOUT, LIMITS_LAYOUT, OFFLINE_STATUS_LAYOUT, DEVICE_INFO_LAYOUT, SECURE_TIME_LAYOUT,
  authCryptogram, issuer as issuerCommands, SmSession, InvoiceKind,
  type Invoice, type IssuedInvoice, type StoredInvoice, type VoidReceipt, type ExportBatch, type TaxpayerInfo, type InvoiceTypeEntry,
  type PurchaseRecord, type OfflineLimits, type OfflineStatus, type DeviceInfo, type SecureTime, type Send,
} from "../tax/index.ts";
import { ChannelError, type ApduChannel } from "../transport/index.ts";

/** Le asked for every command that returns data (extended: the card sends all it has). */
const LE_ALL = 65_536;
const PIN_REF_NAMES = { user: PinRef.USER, so: PinRef.SO } as const;
export type PinName = keyof typeof PIN_REF_NAMES;

export class UkeyError extends Error {
  /** TYUKEY_BASE + n */
  readonly code: number;
  /** The C name, e.g. TYUKEY_DEVICE_PIN_ERROR. */
  readonly errorName: string;
  /** The status word the card answered with; null for host-side errors (+1, +2). */
  readonly sw: number | null;
  /** PIN tries left, for TYUKEY_DEVICE_PIN_ERROR. */
  readonly tries: number;
  constructor(code: number, message: string, sw: number | null = null, tries = 0) {
    const info = taxErrorInfo(code);
    super(`${info?.name ?? `error ${code}`}${sw === null ? "" : ` (SW ${hexSw(sw)})`}: ${message}`);
    this.name = "UkeyError";
    this.code = code;
    this.errorName = info?.name ?? "UNKNOWN";
    this.sw = sw;
    this.tries = tries;
  }
}

export function isUkeyError(e: unknown, code?: number): e is UkeyError {
  return e instanceof UkeyError && (code === undefined || e.code === code);
}

/** Decoded UKEY_GetLxxz answer: the limits and the COS's offline status. */
export interface LimitsAndStatus {
  limits: OfflineLimits;
  status: OfflineStatus;
}

export class UkeyClient {
  constructor(readonly channel: ApduChannel) {}

  /** The raw exchange used by src/tax's builders; maps channel failures to +1/+2. */
  readonly send: Send = async (apdu) => {
    let r: Uint8Array;
    try {
      r = await this.channel.transmit(apdu);
    } catch (error) {
      throw channelFailure(error);
    }
    if (!(r instanceof Uint8Array) || r.length < 2) throw new UkeyError(E.COMM, `response of ${r?.length ?? 0} bytes has no status word`);
    return r;
  };

  /** Power the card and select the tax application; returns the ATR. */
  async connect(): Promise<Uint8Array> {
    let atr: Uint8Array;
    try {
      atr = await this.channel.powerOn();
    } catch (error) {
      throw channelFailure(error);
    }
    await this.select();
    return atr;
  }

  async disconnect(): Promise<void> {
    try {
      await this.channel.powerOff();
    } catch (error) {
      throw channelFailure(error);
    }
  }

  /** One command: data on 9000, UkeyError otherwise. */
  async command(apdu: Uint8Array): Promise<Uint8Array> {
    let result: { data: Uint8Array; sw: number };
    try {
      result = await transceive(this.send, apdu);
    } catch (error) {
      if (error instanceof UkeyError) throw error;
      throw new UkeyError(E.COMM, error instanceof Error ? error.message : String(error));
    }
    if (result.sw !== SW.OK) {
      const tries = (result.sw & 0xfff0) === SW.PIN_WRONG ? result.sw & 0x0f : 0;
      throw new UkeyError(errorForSw(result.sw), describeSw(result.sw), result.sw, tries);
    }
    return result.data;
  }

  private plain(ins: number, data?: Uint8Array, le = LE_ALL, p1 = 0, p2 = 0): Promise<Uint8Array> {
    return this.command(encodeCommand({ cla: CLA_PROPRIETARY, ins, p1, p2, ...(data && data.length ? { data } : {}), le }));
  }

  private decode<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (error) {
      throw new UkeyError(E.COMM, `${what}: undecodable answer: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  // ------------------------------------------------------------------ general commands

  async select(): Promise<void> {
    await this.command(encodeCommand({ cla: CLA_ISO, ins: INS.SELECT, p1: 0x04, p2: 0x00, data: TAX_AID }));
  }

  async getChallenge(length = CHALLENGE_BYTES): Promise<Uint8Array> {
    return this.command(encodeCommand({ cla: CLA_ISO, ins: INS.GET_CHALLENGE, le: length }));
  }

  async externalAuthenticate(cryptogram: Uint8Array): Promise<void> {
    await this.command(encodeCommand({ cla: CLA_ISO, ins: INS.EXTERNAL_AUTHENTICATE, p1: 0, p2: 1, data: cryptogram }));
  }

  /** Bureau authentication with a key the caller holds (personalization, tests, the issuer agent stand-in). */
  async bureauSession(key: Uint8Array): Promise<SmSession> {
    const challenge = await this.getChallenge();
    await this.externalAuthenticate(authCryptogram(key, challenge));
    return new SmSession(key, challenge);
  }

  async verifyPin(pin: string, which: PinName = "user"): Promise<void> {
    await this.command(encodeCommand({ cla: CLA_ISO, ins: INS.VERIFY, p1: 0, p2: PIN_REF_NAMES[which], data: new TextEncoder().encode(pin) }));
  }

  /**
   * PIN state without spending a try (VERIFY with no data): tries left, whether it is
   * verified in this session, or locked.
   */
  async pinState(which: PinName = "user"): Promise<{ verified: boolean; locked: boolean; triesLeft: number | null }> {
    try {
      await this.command(encodeCommand({ cla: CLA_ISO, ins: INS.VERIFY, p1: 0, p2: PIN_REF_NAMES[which] }));
      return { verified: true, locked: false, triesLeft: null };
    } catch (error) {
      if (isUkeyError(error, E.PIN_ERROR)) return { verified: false, locked: false, triesLeft: error.tries };
      if (isUkeyError(error, E.PIN_LOCKED)) return { verified: false, locked: true, triesLeft: 0 };
      throw error;
    }
  }

  async changePin(oldPin: string, newPin: string, which: PinName = "user"): Promise<void> {
    const o = new TextEncoder().encode(oldPin);
    const data = new ByteWriter().u8(o.length).raw(o).raw(new TextEncoder().encode(newPin)).finish();
    await this.command(encodeCommand({ cla: CLA_ISO, ins: INS.CHANGE_PIN, p1: 0, p2: PIN_REF_NAMES[which], data }));
  }

  async unblockPin(soPin: string, newUserPin: string): Promise<void> {
    const o = new TextEncoder().encode(soPin);
    const data = new ByteWriter().u8(o.length).raw(o).raw(new TextEncoder().encode(newUserPin)).finish();
    await this.command(encodeCommand({ cla: CLA_ISO, ins: INS.UNBLOCK_PIN, p1: 0, p2: PinRef.USER, data }));
  }

  /** New SM2 key pair on the card (resets the usage counter); returns 04 || x || y. */
  async generateKeyPair(): Promise<Uint8Array> {
    return this.plain(INS.GENERATE_KEY_PAIR);
  }

  async exportPublicKey(): Promise<Uint8Array> {
    return this.plain(INS.EXPORT_PUBLIC_KEY);
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return this.plain(INS.SIGN, message);
  }

  /** Certificate DER in slot 0 (device), 1 (intermediate CA) or 2 (root CA). */
  async readCert(slot: 0 | 1 | 2): Promise<Uint8Array> {
    return this.plain(INS.READ_CERT, undefined, LE_ALL, slot);
  }

  async writeCert(session: SmSession, slot: 0 | 1 | 2, der: Uint8Array): Promise<void> {
    await issuerCommands.writeCert(this.checkedSend, session, slot, der);
  }

  // issuer (personalization) commands: bureau SM, factory state

  async setPins(s: SmSession, userPin: string, soPin: string): Promise<void> {
    await issuerCommands.setPins(this.checkedSend, s, userPin, soPin);
  }

  async setClock(s: SmSession, unixSeconds: number): Promise<void> {
    await issuerCommands.setClock(this.checkedSend, s, unixSeconds);
  }

  async loadTaxKey(s: SmSession, key: Uint8Array, algorithmId: string): Promise<void> {
    await issuerCommands.loadTaxKey(this.checkedSend, s, key, algorithmId);
  }

  async setBureauKey(s: SmSession, key: Uint8Array): Promise<void> {
    await issuerCommands.setBureauKey(this.checkedSend, s, key);
  }

  async endPersonalization(s: SmSession): Promise<void> {
    await issuerCommands.endPersonalization(this.checkedSend, s);
  }

  async clearSecurityState(): Promise<void> {
    await this.plain(INS.CLEAR_SECURITY_STATE, undefined, 0);
  }

  /**
   * Relay one issuer message (a secure-messaging APDU the bureau built) to the card.
   * The card checks MAC and counter; a refusal is a UkeyError and changes nothing.
   */
  async relay(apdu: Uint8Array): Promise<Uint8Array> {
    return this.command(apdu);
  }

  /** send() for src/tax builders that must surface UkeyErrors. */
  private readonly checkedSend: Send = async (apdu) => {
    const { data, sw } = await transceive(this.send, apdu);
    if (sw !== SW.OK) throw new UkeyError(errorForSw(sw), describeSw(sw), sw, (sw & 0xfff0) === SW.PIN_WRONG ? sw & 0x0f : 0);
    const out = new Uint8Array(data.length + 2);
    out.set(data);
    out[data.length] = 0x90;
    return out;
  };

  // ------------------------------------------------------------------ the 16 tax functions

  /** 1 UKEY_GetNsrjxxqy */
  async getTaxpayer(): Promise<TaxpayerInfo> {
    const b = await this.plain(INS.GET_TAXPAYER);
    return this.decode("taxpayer", () => decodeLayout(TAXPAYER_LAYOUT, b) as unknown as TaxpayerInfo);
  }

  /** 2 UKEY_SetNsrjxxqy (bureau SM) */
  async setTaxpayer(s: SmSession, t: TaxpayerInfo): Promise<void> {
    await issuerCommands.setTaxpayer(this.checkedSend, s, t);
  }

  /** 3 UKEY_GetPzxx: the invoice-type table (empty slots included). */
  async getInvoiceTypes(): Promise<InvoiceTypeEntry[]> {
    const b = await this.plain(INS.GET_INVOICE_TYPES);
    return this.decode("invoice types", () => decodeTable(INVOICE_TYPE_LAYOUT, b) as unknown as InvoiceTypeEntry[]);
  }

  /** 4 UKEY_SetPzxx (user PIN + bureau SM) */
  async setInvoiceTypes(s: SmSession, types: readonly InvoiceTypeEntry[]): Promise<void> {
    await issuerCommands.setInvoiceTypes(this.checkedSend, s, types);
  }

  /** 5 UKEY_GetLgxx: purchase (stock) records, empty slots included. */
  async getPurchases(): Promise<PurchaseRecord[]> {
    const b = await this.plain(INS.GET_PURCHASES);
    return this.decode("purchases", () => decodeTable(PURCHASE_LAYOUT, b) as unknown as PurchaseRecord[]);
  }

  /** 6 UKEY_SyncLgxx (bureau SM) */
  async syncPurchases(s: SmSession, records: readonly PurchaseRecord[]): Promise<void> {
    await issuerCommands.syncPurchases(this.checkedSend, s, records);
  }

  /** 7 UKEY_GetLxxz */
  async getLimits(): Promise<LimitsAndStatus> {
    const b = await this.plain(INS.GET_LIMITS);
    return this.decode("limits", () => {
      if (b.length !== LIMITS_LAYOUT.recordLength + OFFLINE_STATUS_LAYOUT.recordLength) throw new RangeError(`limits answer is ${b.length} bytes`);
      return {
        limits: decodeLayout(LIMITS_LAYOUT, b.subarray(0, LIMITS_LAYOUT.recordLength)) as unknown as OfflineLimits,
        status: decodeLayout(OFFLINE_STATUS_LAYOUT, b.subarray(LIMITS_LAYOUT.recordLength)) as unknown as OfflineStatus,
      };
    });
  }

  /** 8 UKEY_SetLxxz (bureau SM) */
  async setLimits(s: SmSession, l: OfflineLimits): Promise<void> {
    await issuerCommands.setLimits(this.checkedSend, s, l);
  }

  /** 9 UKEY_Kjfp: issue a normal invoice from a draft (code, number, time empty). */
  async issue(draft: Invoice): Promise<IssuedInvoice> {
    if (draft.kind !== InvoiceKind.NORMAL) throw new UkeyError(E.PARAM, "issue takes a normal draft; use red() for a red-letter invoice");
    return this.issueKind(INS.ISSUE, draft);
  }

  /** 10 UKEY_Zffp */
  async voidInvoice(code: string, number: number): Promise<VoidReceipt> {
    const b = await this.plain(INS.VOID, this.key(code, number));
    return this.decode("void receipt", () => decodeVoidReceipt(b));
  }

  /** 11 UKEY_Chfp: a red-letter draft naming its original. */
  async red(draft: Invoice): Promise<IssuedInvoice> {
    if (draft.kind !== InvoiceKind.RED) throw new UkeyError(E.PARAM, "red takes a red-letter draft");
    return this.issueKind(INS.RED, draft);
  }

  /** 12 UKEY_Dqfp */
  async readInvoice(code: string, number: number): Promise<StoredInvoice> {
    const b = await this.plain(INS.READ_INVOICE, this.key(code, number));
    return this.decode("stored invoice", () => decodeStored(b));
  }

  /** 13 UKEY_DcWscsj: signed batch of up to 16 pending events from `fromSeq` (0 = oldest). */
  async exportUnuploaded(fromSeq = 0): Promise<ExportBatch & { body: Uint8Array }> {
    return (await this.exportRaw(fromSeq)).batch;
  }

  /** As exportUnuploaded, with the signed bytes as the card sent them (what the bureau verifies). */
  async exportRaw(fromSeq = 0): Promise<{ bytes: Uint8Array; batch: ExportBatch & { body: Uint8Array } }> {
    const bytes = await this.plain(INS.EXPORT_UNUPLOADED, new ByteWriter().u32(fromSeq).finish());
    return { bytes, batch: this.decode("export batch", () => decodeBatch(bytes)) };
  }

  /** 14 UKEY_QrScjg (bureau SM): returns how many confirmed events are still to settle. */
  async confirmUpload(s: SmSession, throughSeq: number): Promise<number> {
    const r = await issuerCommands.confirmUpload(this.checkedSend, s, throughSeq);
    return this.remaining(r);
  }

  /** Decode CONFIRM UPLOAD's answer (u32 still to settle; empty = 0). */
  remaining(answer: Uint8Array): number {
    if (answer.length === 0) return 0;
    return this.decode("confirm answer", () => {
      const r = new ByteReader(answer, "confirm answer");
      const n = r.u32();
      r.end();
      return n;
    });
  }

  /** 15 UKEY_GetAqsz */
  async getSecureTime(): Promise<SecureTime> {
    const b = await this.plain(INS.GET_SECURE_TIME);
    return this.decode("secure time", () => decodeLayout(SECURE_TIME_LAYOUT, b) as unknown as SecureTime);
  }

  /** 16 UKEY_GetSbxx */
  async getDeviceInfo(): Promise<DeviceInfo> {
    const b = await this.plain(INS.GET_DEVICE_INFO);
    return this.decode("device info", () => decodeLayout(DEVICE_INFO_LAYOUT, b) as unknown as DeviceInfo);
  }

  private async issueKind(ins: number, draft: Invoice): Promise<IssuedInvoice> {
    let bytes: Uint8Array;
    try {
      bytes = encodeInvoice(draft);
    } catch (error) {
      throw new UkeyError(E.PARAM, error instanceof Error ? error.message : String(error));
    }
    const b = await this.plain(ins, bytes);
    return this.decode("issued invoice", () => decodeIssued(b));
  }

  private key(code: string, number: number): Uint8Array {
    try {
      return encodeInvoiceKey(code, number);
    } catch (error) {
      throw new UkeyError(E.PARAM, error instanceof Error ? error.message : String(error));
    }
  }
}

function channelFailure(error: unknown): UkeyError {
  if (error instanceof UkeyError) return error;
  if (error instanceof ChannelError) {
    if (error.code === "PROTOCOL") return new UkeyError(E.COMM, error.message);
    return new UkeyError(E.NOT_FOUND, `${error.code}: ${error.message}`);
  }
  return new UkeyError(E.COMM, error instanceof Error ? error.message : String(error));
}
