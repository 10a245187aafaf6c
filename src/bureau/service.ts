/**
 * The bureau's behaviour, without HTTP: registration, sync, CRL publication and the upload
 * of invoice batches with signed receipts. Every entry point validates its input first and
 * changes nothing when it refuses (BureauError carries the HTTP status and a stable code).
 */
import {
  fromHex, type Clock, type Rng,
} from "../sim/index.ts";
import {
  parseCertificate, sm2Sign, sm2VerifyStrict, sm3, verifyChain, X509Error, SM4_KEY_BYTES, SM2_PUBLIC_KEY_BYTES,
  type CertificateInfo, type CrlInfo,
} from "../crypto/index.ts";
import {
  beijingDate, PurchaseStatus, decodeBatch, DecodeError, deriveCardKey, EventKind, PURCHASE_LAYOUT, signedInvoiceBytes, signedVoidBytes,
  type ExportBatch, type IssuanceProfile,
} from "../tax/index.ts";
import { BureauError, bad } from "./errors.ts";
import type { BureauFaults } from "./faults.ts";
import { array, b64, base64, DEVICE_SERIAL, hex, integer, INVOICE_CODE, lengthPrefixed, object, onlyKeys, parseChallenge, TAXPAYER_ID, text } from "./validate.ts";
import { confirmMessages, syncMessages, toOfflineLimits, toPurchaseRecords, type IssuerMessage } from "./issuer-messages.ts";
import { InvoiceFormatError, type InvoiceFields, type InvoiceFormat, MAX_INVOICE_BYTES, INVOICE_KINDS } from "./invoice-format.ts";
import { CRL_REPUBLISH_MS, issueDevice, publishCrl, type BureauPki } from "./pki.ts";
import type { BatchEffects, BureauStore, DeviceRecord, Limits, Restrictions, StockRange, StoredInvoice, TaxpayerRecord } from "./store.ts";

/** The article: host and server clocks may differ by at most 5 minutes. */
export const MAX_CLIENT_CLOCK_SKEW_MS = 5 * 60_000;
export const MAX_INVOICES_PER_BATCH = 500;
export const MAX_CHAIN_CERTIFICATES = 3;
/** The card holds 10 purchase records, so a taxpayer has at most 10 stock ranges. */
export const MAX_STOCK_RANGES = PURCHASE_LAYOUT.records;
export const MAX_EXPORT_BYTES = 1024 * 1024;
export const MAX_STOCK_RANGE_COUNT = 1_000_000;
const MAX_SIGNATURE_BYTES = 80;
const RECEIPT_ID_BYTES = 16;

export { BureauError };

/** Per-invoice rejection codes in a receipt's `rejected` list. */
export const INVOICE_REJECTIONS = [
  "MALFORMED_INVOICE", "BAD_SIGNATURE", "WRONG_DEVICE", "BAD_TAX_CONTROL_CODE", "NOT_IN_STOCK", "KIND_NOT_ALLOWED", "OVER_LIMIT", "DUPLICATE_NUMBER",
  "VOID_UNKNOWN_INVOICE",
] as const;

/** Codes with which the service refuses a whole request (besides the chain failures of src/crypto). */
export const REQUEST_REFUSALS = [
  "BAD_REQUEST", "BAD_CERTIFICATE", "CERT_SUBJECT_MISMATCH", "KEY_USAGE", "UNKNOWN_DEVICE", "UNKNOWN_TAXPAYER", "CLOCK_SKEW", "STOCK_CONFLICT",
  "BAD_EXPORT", "BAD_BATCH_SIGNATURE", "EXPORT_DEVICE_MISMATCH",
] as const;


export type { IssuerMessage };

export interface SyncPayload {
  version: 1;
  taxpayerId: string;
  deviceSerial: string;
  serverTime: number;
  stock: StockRange[];
  limits: Limits;
  restrictions: Restrictions;
  crlNumber: number;
}

export interface SyncResponse {
  payload: SyncPayload;
  /** The exact UTF-8 text that `signature` (SM2 by the receipt signer, DER, base64) covers. */
  payloadText: string;
  signature: string;
  issuerMessages: IssuerMessage[];
}

export interface RejectedInvoice {
  index: number;
  invoiceCode?: string;
  invoiceNumber?: string;
  code: string;
  message: string;
}

export interface Receipt {
  version: 1;
  receiptId: string;
  taxpayerId: string;
  deviceSerial: string;
  receivedAt: number;
  batchDigest: string;
  accepted: { invoiceCode: string; invoiceNumber: string }[];
  /** Invoices voided by signed void events of an export batch. */
  voided: { invoiceCode: string; invoiceNumber: string }[];
  rejected: RejectedInvoice[];
  /** Export batches: the card events received without a gap, through this sequence number (CONFIRM UPLOAD). */
  confirmThrough: number | null;
}

export interface UploadResponse {
  receipt: Receipt;
  receiptText: string;
  signature: string;
  /** True when this exact batch was uploaded before and its stored receipt is returned. */
  replayed: boolean;
  /** With a `challenge`: EXTERNAL AUTHENTICATE + CONFIRM UPLOAD for the card (not part of the signed receipt). */
  issuerMessages: IssuerMessage[];
}

export interface ServiceOptions {
  store: BureauStore;
  pki: BureauPki;
  rng: Rng;
  clock: Clock;
  format: InvoiceFormat;
  faults: () => Readonly<BureauFaults>;
  /**
   * Master key from which card keys are derived (deriveCardKey) for devices without a
   * registered card key. Without either, the bureau cannot speak to that card and sends no
   * issuer messages (a host then falls back to its own issuer agent).
   */
  masterKey?: Uint8Array | undefined;
}

// ---------------------------------------------------------------------------------------------

export class BureauService {
  private crl: CrlInfo;
  private readonly options: ServiceOptions;

  constructor(options: ServiceOptions) {
    this.options = options;
    this.crl = this.publish();
  }

  get pki(): BureauPki {
    return this.options.pki;
  }

  /** The bureau's time: the injected clock plus the clock-skew fault. */
  now(): number {
    return this.options.clock.now() + this.options.faults().clockSkewMs;
  }

  private publish(): CrlInfo {
    const store = this.options.store;
    const number = Number(store.meta("crlNumber") ?? "0") + 1;
    store.setMeta("crlNumber", String(number));
    return publishCrl(this.options.pki, this.now(), store.revoked(), number);
  }

  /** The current CRL, re-published every 12 h unless the publication fault stops it. */
  currentCrl(): CrlInfo {
    if (!this.options.faults().crlPublicationStopped && this.now() - this.crl.thisUpdate >= CRL_REPUBLISH_MS) this.crl = this.publish();
    return this.crl;
  }

  revoke(input: unknown): { serial: string; crlNumber: number } {
    const o = object(input, "revocation");
    onlyKeys(o, ["serial"], "revocation");
    const serial = text(o, "serial", /^[0-9a-f]{1,40}$/, "revocation").replace(/^(00)+(?=..)/, "");
    this.options.store.revoke(serial, Math.floor(this.now() / 1000) * 1000);
    if (!this.options.faults().crlPublicationStopped) this.crl = this.publish();
    return { serial, crlNumber: this.crl.crlNumber ?? 0 };
  }

  registerTaxpayer(input: unknown): TaxpayerRecord {
    const o = object(input, "taxpayer");
    onlyKeys(o, ["taxpayerId", "name", "limits", "restrictions", "stock"], "taxpayer");
    const limitsIn = object(o.limits, "taxpayer.limits");
    onlyKeys(limitsIn, ["offlineHours", "maxInvoiceFen", "maxOfflineTotalFen", "maxOfflineCount"], "taxpayer.limits");
    const restrictionsIn = object(o.restrictions ?? { issuingLocked: false, allowedKinds: [...INVOICE_KINDS] }, "taxpayer.restrictions");
    onlyKeys(restrictionsIn, ["issuingLocked", "allowedKinds"], "taxpayer.restrictions");
    const kinds = array(restrictionsIn, "allowedKinds", 0, INVOICE_KINDS.length, "taxpayer.restrictions");
    if (!kinds.every((k) => (INVOICE_KINDS as readonly unknown[]).includes(k))) throw bad("BAD_REQUEST", `allowedKinds may hold only ${INVOICE_KINDS.join(", ")}`);
    if (typeof restrictionsIn.issuingLocked !== "boolean") throw bad("BAD_REQUEST", "taxpayer.restrictions.issuingLocked must be true or false");
    const record: TaxpayerRecord = {
      taxpayerId: text(o, "taxpayerId", TAXPAYER_ID, "taxpayer"),
      name: text(o, "name", /^.{1,100}$/u, "taxpayer"),
      limits: {
        offlineHours: integer(limitsIn, "offlineHours", 1, 24 * 365, "taxpayer.limits"),
        maxInvoiceFen: integer(limitsIn, "maxInvoiceFen", 1, Number.MAX_SAFE_INTEGER, "taxpayer.limits"),
        maxOfflineTotalFen: integer(limitsIn, "maxOfflineTotalFen", 1, Number.MAX_SAFE_INTEGER, "taxpayer.limits"),
        maxOfflineCount: integer(limitsIn, "maxOfflineCount", 1, 10_000_000, "taxpayer.limits"),
      },
      restrictions: { issuingLocked: restrictionsIn.issuingLocked, allowedKinds: kinds as string[] },
      stock: array(o, "stock", 0, MAX_STOCK_RANGES, "taxpayer").map((s, i) => {
        const range = object(s, `taxpayer.stock[${i}]`);
        onlyKeys(range, ["typeCode", "invoiceCode", "startNumber", "count", "purchasedOn"], `taxpayer.stock[${i}]`);
        return {
          typeCode: range.typeCode === undefined ? DEFAULT_TYPE_CODE : text(range, "typeCode", /^[\x20-\x7e]{5}$/, `taxpayer.stock[${i}]`),
          purchasedOn: range.purchasedOn === undefined ? yyyymmdd(this.now()) : text(range, "purchasedOn", /^\d{8}$/, `taxpayer.stock[${i}]`),
          invoiceCode: text(range, "invoiceCode", INVOICE_CODE, `taxpayer.stock[${i}]`),
          startNumber: integer(range, "startNumber", 1, 99_999_999, `taxpayer.stock[${i}]`),
          count: integer(range, "count", 1, MAX_STOCK_RANGE_COUNT, `taxpayer.stock[${i}]`),
        };
      }),
    };
    for (const r of record.stock) {
      if (r.startNumber + r.count - 1 > 99_999_999) throw bad("BAD_REQUEST", `stock range ${r.invoiceCode}/${r.startNumber} runs past 99999999`);
      for (const n of [r.startNumber, r.startNumber + r.count - 1]) {
        const owner = this.options.store.stockOwner(r.invoiceCode, n);
        if (owner !== undefined && owner !== record.taxpayerId) throw new BureauError(409, "STOCK_CONFLICT", `invoice ${r.invoiceCode}/${n} is already sold to ${owner}`);
      }
    }
    try {
      this.options.store.putTaxpayer(record);
    } catch (error) {
      throw new BureauError(409, "STOCK_CONFLICT", `stock ranges overlap: ${error instanceof Error ? error.message : String(error)}`);
    }
    return record;
  }

  registerDevice(input: unknown): { deviceSerial: string; taxpayerId: string } {
    const o = object(input, "device");
    onlyKeys(o, ["deviceSerial", "taxpayerId", "taxControlKey", "cardKey"], "device");
    const deviceSerial = text(o, "deviceSerial", DEVICE_SERIAL, "device");
    const taxpayerId = text(o, "taxpayerId", TAXPAYER_ID, "device");
    const key16 = new RegExp(`^[0-9a-fA-F]{${SM4_KEY_BYTES * 2}}$`);
    const key = fromHex(text(o, "taxControlKey", key16, "device"));
    const cardKey = o.cardKey === undefined ? undefined : fromHex(text(o, "cardKey", key16, "device"));
    if (!this.options.store.taxpayer(taxpayerId)) throw new BureauError(404, "UNKNOWN_TAXPAYER", `taxpayer ${taxpayerId} is not registered`);
    this.options.store.putDevice(deviceSerial, taxpayerId, key, cardKey);
    return { deviceSerial, taxpayerId };
  }

  /**
   * Registers the taxpayer and the device of an issuance profile (src/tax parseProfile), as the
   * bureau that personalized the card knows them: stock from its purchase records, limits from
   * its offline limits, the device with the profile's tax-control key.
   */
  registerProfile(profile: IssuanceProfile, deviceSerial: string): TaxpayerRecord {
    const l = profile.limits;
    const record = this.registerTaxpayer({
      taxpayerId: profile.taxpayer.taxpayerId,
      name: profile.taxpayer.taxpayerName,
      limits: { offlineHours: l.validDays * 24, maxInvoiceFen: l.singleLimitFen, maxOfflineTotalFen: l.maxOfflineAmountFen, maxOfflineCount: l.maxOfflineCount },
      restrictions: { issuingLocked: l.offlineAllowed === 0, allowedKinds: [...INVOICE_KINDS] },
      stock: profile.purchases.filter((p) => p.status !== PurchaseStatus.EMPTY).map((p) => ({
        typeCode: p.typeCode, invoiceCode: p.invoiceCode, startNumber: p.startNumber, count: p.count, ...(p.purchasedOn ? { purchasedOn: p.purchasedOn } : {}),
      })),
    });
    this.registerDevice({ deviceSerial, taxpayerId: record.taxpayerId, taxControlKey: hex(profile.taxKey) });
    return record;
  }

  /** Issues a device certificate for a key generated on the Ukey (personalisation). */
  issueDeviceCertificate(input: unknown): { certificate: string; chain: string[] } {
    const o = object(input, "certificate request");
    onlyKeys(o, ["publicKey", "taxpayerId", "deviceSerial", "notBefore", "notAfter"], "certificate request");
    const publicKey = fromHex(text(o, "publicKey", new RegExp(`^04[0-9a-fA-F]{${(SM2_PUBLIC_KEY_BYTES - 1) * 2}}$`), "certificate request"));
    const request = {
      publicKey,
      taxpayerId: text(o, "taxpayerId", TAXPAYER_ID, "certificate request"),
      deviceSerial: text(o, "deviceSerial", DEVICE_SERIAL, "certificate request"),
      ...(o.notBefore !== undefined ? { notBefore: integer(o, "notBefore", 0, 8_000_000_000_000, "certificate request") } : {}),
      ...(o.notAfter !== undefined ? { notAfter: integer(o, "notAfter", 0, 8_000_000_000_000, "certificate request") } : {}),
    };
    let der: Uint8Array;
    try {
      der = issueDevice(this.options.pki, this.options.rng, this.now(), request);
    } catch (error) {
      if (error instanceof X509Error) throw bad("BAD_REQUEST", error.message);
      throw error;
    }
    return { certificate: b64(der), chain: [b64(der), b64(this.options.pki.intermediate.der)] };
  }

  /** The card key of a registered device: its own, or derived from the master key and its serial; undefined when unknown. */
  private cardKey(deviceSerial: string, device: DeviceRecord): Uint8Array | undefined {
    if (device.cardKey) return device.cardKey;
    return this.options.masterKey ? deriveCardKey(this.options.masterKey, deviceSerial) : undefined;
  }

  sync(taxpayerId: string, deviceSerial: string, challengeHex?: string): SyncResponse {
    if (!TAXPAYER_ID.test(taxpayerId)) throw bad("BAD_REQUEST", "taxpayerId is missing or malformed");
    if (!DEVICE_SERIAL.test(deviceSerial)) throw bad("BAD_REQUEST", "deviceSerial is missing or malformed");
    const challenge = challengeHex === undefined ? undefined : parseChallenge(challengeHex);
    const taxpayer = this.options.store.taxpayer(taxpayerId);
    if (!taxpayer) throw new BureauError(404, "UNKNOWN_TAXPAYER", `taxpayer ${taxpayerId} is not registered`);
    const device = this.options.store.device(deviceSerial);
    if (!device || device.taxpayerId !== taxpayerId) throw new BureauError(404, "UNKNOWN_DEVICE", `device ${deviceSerial} is not registered to ${taxpayerId}`);
    const now = this.now();
    const purchases = toPurchaseRecords(taxpayer.stock);
    const offlineLimits = toOfflineLimits(taxpayer.limits, taxpayer.restrictions, now);
    const payload: SyncPayload = {
      version: 1, taxpayerId, deviceSerial, serverTime: now, stock: taxpayer.stock, limits: taxpayer.limits,
      restrictions: taxpayer.restrictions, crlNumber: this.currentCrl().crlNumber ?? 0,
    };
    const payloadText = JSON.stringify(payload);
    const cardKey = this.cardKey(deviceSerial, device);
    const issuerMessages = challenge && cardKey ? syncMessages(cardKey, challenge, purchases, offlineLimits) : [];
    return { payload, payloadText, signature: this.sign(payloadText), issuerMessages };
  }

  private sign(textToSign: string): string {
    const signer = this.options.pki.signer.keyPair;
    return b64(sm2Sign(signer.privateKey, new TextEncoder().encode(textToSign), { publicKey: signer.publicKey }));
  }

  /** Verifies and stores a batch; see docs/bureau-api.md for every refusal code. */
  upload(input: unknown): UploadResponse {
    const o = object(input, "upload");
    onlyKeys(o, ["taxpayerId", "deviceSerial", "certificates", "invoices", "exportBatch", "clientTime", "challenge"], "upload");
    const taxpayerId = text(o, "taxpayerId", TAXPAYER_ID, "upload");
    const deviceSerial = text(o, "deviceSerial", DEVICE_SERIAL, "upload");
    const certificates = array(o, "certificates", 1, MAX_CHAIN_CERTIFICATES, "upload").map((c, i) => base64(c, `upload.certificates[${i}]`, 16 * 1024));
    if ((o.invoices === undefined) === (o.exportBatch === undefined)) throw bad("BAD_REQUEST", "upload needs exactly one of invoices and exportBatch");
    const exportBytes = o.exportBatch === undefined ? undefined : base64(o.exportBatch, "upload.exportBatch", MAX_EXPORT_BYTES);
    const invoices: Entry[] = o.invoices === undefined ? [] : array(o, "invoices", 1, MAX_INVOICES_PER_BATCH, "upload").map((item, index) => {
      const entry = object(item, `upload.invoices[${index}]`);
      onlyKeys(entry, ["data", "signature"], `upload.invoices[${index}]`);
      return { kind: "issue", index, seq: undefined, data: base64(entry.data, `upload.invoices[${index}].data`, MAX_INVOICE_BYTES), signature: base64(entry.signature, `upload.invoices[${index}].signature`, MAX_SIGNATURE_BYTES) };
    });
    const challenge = o.challenge === undefined ? undefined : parseChallenge(o.challenge);
    const now = this.now();
    if (o.clientTime !== undefined) {
      const clientTime = integer(o, "clientTime", 0, 8_640_000_000_000_000, "upload");
      if (Math.abs(clientTime - now) > MAX_CLIENT_CLOCK_SKEW_MS) {
        throw new BureauError(409, "CLOCK_SKEW", `client clock differs from the bureau's by ${Math.round((clientTime - now) / 1000)} s (at most ${MAX_CLIENT_CLOCK_SKEW_MS / 1000} s allowed)`, { serverTime: now });
      }
    }
    const leaf = this.verifyDevice(certificates, taxpayerId, deviceSerial, now);
    const device = this.options.store.device(deviceSerial);
    if (!device || device.taxpayerId !== taxpayerId) throw new BureauError(403, "UNKNOWN_DEVICE", `device ${deviceSerial} is not registered to ${taxpayerId}`);
    const entries = exportBytes ? this.exportEntries(exportBytes, deviceSerial, leaf) : invoices;
    const digestParts = exportBytes ? [leaf.der, exportBytes] : [leaf.der, ...invoices.flatMap((i) => (i.kind === "issue" ? [i.data, i.signature] : []))];
    const batchDigest = hex(sm3(...lengthPrefixed(digestParts)));
    const previous = this.options.store.receipt(batchDigest);
    let response: Omit<UploadResponse, "issuerMessages">;
    if (previous) {
      response = { receipt: JSON.parse(previous.receiptText) as Receipt, receiptText: previous.receiptText, signature: b64(previous.signature), replayed: true };
    } else {
      response = this.acceptBatch({ taxpayerId, deviceSerial, leaf, device, entries, exported: exportBytes !== undefined, batchDigest, now });
    }
    // The confirmation reflects what the bureau holds now (a replay may follow a newer upload).
    const through = this.options.store.device(deviceSerial)?.confirmedSeq ?? 0;
    const cardKey = this.cardKey(deviceSerial, device);
    const issuerMessages = challenge && cardKey && through > 0 ? confirmMessages(cardKey, challenge, through) : [];
    return { ...response, issuerMessages };
  }

  /** The events of a card export (EXPORT UNUPLOADED), after checking the card's signature over it. */
  private exportEntries(bytes: Uint8Array, deviceSerial: string, leaf: CertificateInfo): Entry[] {
    let batch: ExportBatch & { body: Uint8Array };
    try {
      batch = decodeBatch(bytes);
    } catch (error) {
      if (error instanceof DecodeError || error instanceof RangeError) throw new BureauError(400, "BAD_EXPORT", `export batch: ${error.message}`);
      throw error;
    }
    if (batch.serial !== deviceSerial) throw new BureauError(403, "EXPORT_DEVICE_MISMATCH", `export batch is from device ${batch.serial}, not ${deviceSerial}`);
    if (!sm2VerifyStrict(leaf.publicKey as Uint8Array, batch.body, batch.signature)) throw new BureauError(403, "BAD_BATCH_SIGNATURE", "export batch signature does not verify under the device certificate");
    if (batch.events.length === 0 || batch.events.length > MAX_INVOICES_PER_BATCH) throw new BureauError(400, "BAD_EXPORT", `export batch must hold 1-${MAX_INVOICES_PER_BATCH} events`);
    return batch.events.map((e, index): Entry => e.kind === EventKind.ISSUE
      ? { kind: "issue", index, seq: e.seq, data: signedInvoiceBytes(e.issued.invoice, e.issued.taxCode), signature: e.issued.signature }
      : { kind: "void", index, seq: e.seq, invoiceCode: e.code, invoiceNumber: e.number, at: e.at, signature: e.signature });
  }

  private verifyDevice(certificates: Uint8Array[], taxpayerId: string, deviceSerial: string, now: number): CertificateInfo {
    let parsed: CertificateInfo[];
    try {
      parsed = certificates.map((der) => parseCertificate(der));
    } catch (error) {
      throw new BureauError(400, "BAD_CERTIFICATE", error instanceof Error ? error.message : String(error));
    }
    const [leaf, ...intermediates] = parsed as [CertificateInfo, ...CertificateInfo[]];
    const result = verifyChain({ roots: [this.options.pki.root.certificate], intermediates, leaf, at: now, crls: [this.currentCrl()] });
    if (!result.ok) throw new BureauError(403, result.reason, `device certificate chain refused: ${result.message}`, { subject: result.subject });
    const subject = leaf.subject.fields;
    if (subject.organizationIdentifier !== taxpayerId || subject.serialNumber !== deviceSerial) {
      throw new BureauError(403, "CERT_SUBJECT_MISMATCH", `device certificate is for ${subject.organizationIdentifier}/${subject.serialNumber}, not ${taxpayerId}/${deviceSerial}`);
    }
    if (!leaf.keyUsage?.includes("digitalSignature")) throw new BureauError(403, "KEY_USAGE", "device certificate may not sign");
    return leaf;
  }

  private acceptBatch(batch: {
    taxpayerId: string; deviceSerial: string; leaf: CertificateInfo; device: DeviceRecord;
    entries: Entry[]; exported: boolean; batchDigest: string; now: number;
  }): Omit<UploadResponse, "issuerMessages"> {
    const receiptId = hex(sm3(new TextEncoder().encode("receipt"), fromHex(batch.batchDigest)).subarray(0, RECEIPT_ID_BYTES));
    const taxpayer = this.options.store.taxpayer(batch.taxpayerId) as TaxpayerRecord;
    const accepted: Receipt["accepted"] = [];
    const voided: Receipt["voided"] = [];
    const rejected: RejectedInvoice[] = [];
    const fresh = new Map<string, StoredInvoice>();
    const acceptedKeys = new Set<string>();
    const voids: NonNullable<BatchEffects["voids"]> = [];
    // Card events confirmed so far, advanced over this batch's events while they are accepted without a gap.
    let through = batch.device.confirmedSeq;
    let blocked = false;
    const advance = (seq: number | undefined, ok: boolean) => {
      if (seq === undefined || blocked || seq <= through) return;
      if (ok && seq === through + 1) through = seq;
      else blocked = true;
    };
    for (const entry of batch.entries) {
      if (entry.kind === "void") {
        const outcome = this.checkVoid(entry, batch, fresh);
        if ("code" in outcome) rejected.push(outcome);
        else {
          voided.push({ invoiceCode: outcome.invoiceCode, invoiceNumber: outcome.invoiceNumber });
          if (outcome.apply) voids.push(outcome);
        }
        advance(entry.seq, !("code" in outcome));
        continue;
      }
      const outcome = this.checkInvoice(entry, batch, taxpayer, fresh);
      advance(entry.seq, !("code" in outcome));
      if ("code" in outcome) {
        rejected.push(outcome);
        continue;
      }
      const key = `${outcome.fields.invoiceCode}/${outcome.fields.invoiceNumber}`;
      if (!acceptedKeys.has(key)) accepted.push({ invoiceCode: outcome.fields.invoiceCode, invoiceNumber: outcome.fields.invoiceNumber });
      acceptedKeys.add(key);
      if (outcome.isNew) {
        const f = outcome.fields;
        fresh.set(key, {
          invoiceCode: f.invoiceCode, invoiceNumber: f.invoiceNumber, taxpayerId: f.taxpayerId, deviceSerial: batch.deviceSerial, kind: f.kind,
          issuedAt: f.issuedAt, totalFen: f.totalFen, data: entry.data, signature: entry.signature, receivedAt: batch.now, receiptId,
        });
      }
    }
    const confirmed = batch.exported && through > batch.device.confirmedSeq ? through : undefined;
    const receipt: Receipt = {
      version: 1, receiptId, taxpayerId: batch.taxpayerId, deviceSerial: batch.deviceSerial, receivedAt: batch.now,
      batchDigest: batch.batchDigest, accepted, voided, rejected,
      confirmThrough: batch.exported && through > 0 ? through : null,
    };
    const receiptText = JSON.stringify(receipt);
    const signature = this.sign(receiptText);
    this.options.store.commitBatch(batch.batchDigest, { receiptId, receiptText, signature: new Uint8Array(Buffer.from(signature, "base64")) }, [...fresh.values()], {
      voids, ...(confirmed !== undefined ? { confirmed: { deviceSerial: batch.deviceSerial, seq: confirmed } } : {}),
    });
    return { receipt, receiptText, signature, replayed: false };
  }

  private checkVoid(
    entry: VoidEntry,
    batch: { taxpayerId: string; leaf: CertificateInfo },
    fresh: Map<string, StoredInvoice>,
  ): RejectedInvoice | { invoiceCode: string; invoiceNumber: string; voidedAt: number; apply: boolean } {
    const invoiceNumber = String(entry.invoiceNumber).padStart(8, "0");
    const reject = (code: string, message: string): RejectedInvoice => ({ index: entry.index, invoiceCode: entry.invoiceCode, invoiceNumber, code, message });
    if (!sm2VerifyStrict(batch.leaf.publicKey as Uint8Array, signedVoidBytes(entry.invoiceCode, entry.invoiceNumber, entry.at), entry.signature)) {
      return reject("BAD_SIGNATURE", "void signature does not verify under the device certificate");
    }
    const original = fresh.get(`${entry.invoiceCode}/${invoiceNumber}`) ?? this.options.store.invoice(entry.invoiceCode, invoiceNumber);
    if (!original || original.taxpayerId !== batch.taxpayerId) return reject("VOID_UNKNOWN_INVOICE", "the voided invoice was never received from this taxpayer");
    const voidedAt = entry.at * 1000;
    return { invoiceCode: entry.invoiceCode, invoiceNumber, voidedAt, apply: original.voidedAt === undefined };
  }

  private checkInvoice(
    pending: IssueEntry,
    batch: { taxpayerId: string; deviceSerial: string; leaf: CertificateInfo; device: DeviceRecord },
    taxpayer: TaxpayerRecord,
    fresh: Map<string, StoredInvoice>,
  ): RejectedInvoice | { fields: InvoiceFields; isNew: boolean } {
    const reject = (code: string, message: string, fields?: InvoiceFields): RejectedInvoice => ({
      index: pending.index, ...(fields ? { invoiceCode: fields.invoiceCode, invoiceNumber: fields.invoiceNumber } : {}), code, message,
    });
    let fields: InvoiceFields;
    try {
      fields = this.options.format.decode(pending.data);
    } catch (error) {
      if (error instanceof InvoiceFormatError) return reject("MALFORMED_INVOICE", error.message);
      throw error;
    }
    if (!sm2VerifyStrict(batch.leaf.publicKey as Uint8Array, pending.data, pending.signature)) return reject("BAD_SIGNATURE", "invoice signature does not verify under the device certificate", fields);
    if (fields.taxpayerId !== batch.taxpayerId || (fields.deviceSerial !== undefined && fields.deviceSerial !== batch.deviceSerial)) {
      return reject("WRONG_DEVICE", `invoice is from ${fields.taxpayerId}/${fields.deviceSerial ?? "?"}`, fields);
    }
    if (!this.options.format.verifyTaxControlCode(fields, pending.data, batch.device.taxControlKey)) return reject("BAD_TAX_CONTROL_CODE", "tax control code does not verify", fields);
    if (this.options.store.stockOwner(fields.invoiceCode, Number(fields.invoiceNumber)) !== batch.taxpayerId) return reject("NOT_IN_STOCK", "invoice number was not sold to this taxpayer", fields);
    if (!taxpayer.restrictions.allowedKinds.includes(fields.kind)) return reject("KIND_NOT_ALLOWED", `invoice kind ${fields.kind} is not allowed`, fields);
    if (Math.abs(fields.totalFen) > taxpayer.limits.maxInvoiceFen) return reject("OVER_LIMIT", `total ${fields.totalFen} fen exceeds ${taxpayer.limits.maxInvoiceFen}`, fields);
    const key = `${fields.invoiceCode}/${fields.invoiceNumber}`;
    const existing = fresh.get(key) ?? this.options.store.invoice(fields.invoiceCode, fields.invoiceNumber);
    if (existing) {
      const same = Buffer.compare(existing.data, pending.data) === 0 && Buffer.compare(existing.signature, pending.signature) === 0;
      return same ? { fields, isNew: false } : reject("DUPLICATE_NUMBER", `invoice ${key} was already received with different content`, fields);
    }
    return { fields, isNew: true };
  }
}

interface IssueEntry {
  kind: "issue";
  index: number;
  /** Card event sequence (export batches only). */
  seq: number | undefined;
  data: Uint8Array;
  signature: Uint8Array;
}

interface VoidEntry {
  kind: "void";
  index: number;
  seq: number;
  invoiceCode: string;
  invoiceNumber: number;
  /** Void time, Unix seconds (what the card signed). */
  at: number;
  signature: Uint8Array;
}

type Entry = IssueEntry | VoidEntry;

const DEFAULT_TYPE_CODE = "02601";

/** The purchase date as the card records dates: Beijing time, YYYYMMDD. */
function yyyymmdd(ms: number): string {
  return beijingDate(Math.floor(ms / 1000));
}

