/**
 * The offline issuer (the paper's flow):
 *  - online: sync stock, limits and restrictions from the bureau (signed payload; the
 *    bureau's issuer messages are relayed to the Ukey), fetch and check the CRL;
 *  - offline: issue, print, void and red-letter invoices;
 *  - on reconnection: upload (batches, retries with backoff, signed receipts confirmed
 *    to the Ukey); online issuing only once every offline invoice is uploaded.
 *
 * Order of every state change: intent row in the local DB -> the Ukey commits -> the
 * invoice row in the local DB -> printing. After a crash anywhere, `reconcile()` settles
 * the open intents by reading the Ukey (the source of truth) and adopts every invoice the
 * Ukey holds that the DB lacks: nothing lost, nothing issued twice, nothing printed that
 * the Ukey did not commit.
 */
import {
  E, InvoiceKind, IssueMode, PurchaseStatus, InvoiceState, EventKind, decodeInvoice, encodeInvoice, invoiceGrandTotal, signedInvoiceBytes,
  bytesEqual, formatInvoiceNumber,
  type Invoice, type IssuedInvoice, type StoredInvoice, type PurchaseRecord, type TaxpayerInfo, type DeviceInfo, type UploadEvent, type InvoiceTypeEntry,
} from "../tax/index.ts";
import {
  parseCertificate, parseCrl, verifyChain, verifyCrl, sm2VerifyStrict, pemToDer, type CertificateInfo, type CrlInfo,
} from "../crypto/index.ts";
import type { Clock, Rng } from "../sim/index.ts";
import { UkeyClient, UkeyError, isUkeyError } from "./client.ts";
import { HostDb, type InvoiceRow, type IntentRow } from "./db.ts";
import { HostError } from "./errors.ts";
import { BureauHttp, BureauHttpError } from "./bureau-http.ts";
import type { IssuerAgent, SyncPayload } from "./issuer-agent.ts";
import type { InvoiceInput } from "./invoice-input.ts";
import { checkPassword } from "./password.ts";
import { renderInvoiceHtml } from "./print.ts";

export const DEFAULT_RETRY = { attempts: 6, baseDelayMs: 200, maxDelayMs: 5_000 } as const;
const MAX_ADOPT_ROUNDS = 100_000;

/** StoredInvoice.uploaded bit: the bureau's confirmation of the issue event reached the Ukey. */
const UPLOADED_ISSUE = 1;
/** receipt_id of rows whose upload was learnt from the Ukey during reconciliation. */
const RECONCILED_RECEIPT = "reconciled-from-ukey";

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new UkeyError(E.COMM, `invariant broken: ${message}`);
}

export type Sleeper = (ms: number) => Promise<void>;
export const realSleep: Sleeper = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface IssuerOptions {
  client: UkeyClient;
  db: HostDb;
  clock: Clock;
  rng: Rng;
  /** The bureau over HTTPS; absent when offline. */
  bureau?: BureauHttp;
  /** Builds the bureau's secure messages when the bureau does not relay them (see issuer-agent.ts). */
  agent?: IssuerAgent;
  /** Backoff sleeper (tests inject a fast one). */
  sleep?: Sleeper;
  retry?: Partial<RetryPolicy>;
  /** Called with the printable HTML after the Ukey and the DB committed. */
  printer?: (html: string, row: InvoiceRow) => Promise<void> | void;
}

export interface IssueOptions {
  /** Idempotency key: the same request id never issues twice. */
  requestId?: string;
  /** Issue in online mode (refused while offline invoices wait for upload). */
  online?: boolean;
}

export interface ReconcileReport {
  committed: number;
  aborted: number;
  adopted: number;
  voidsSettled: number;
  /** DB rows marked uploaded because the Ukey had the bureau's confirmation (crash between confirm and DB). */
  uploadsSettled: number;
}

export interface UploadReport {
  uploaded: number;
  batches: number;
  receipts: string[];
  confirmedThrough: number;
  attempts: number;
  /** Why the upload stopped early, when it did. */
  stopped?: { code: string; message: string };
}

export interface SyncReport {
  serverTime: number;
  /** Host clock minus the bureau's clock at the sync (uploads are refused beyond 5 minutes). */
  clockSkewMs: number;
  stockRanges: number;
  messagesApplied: number;
  crlNumber: number | undefined;
}

export interface Identity {
  serial: string;
  taxpayer: TaxpayerInfo;
  device: DeviceInfo;
}

interface BureauPki {
  root: CertificateInfo;
  intermediate: CertificateInfo;
  signer: CertificateInfo;
}

function b64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** The draft form of an invoice: what the host sent before the card filled code, number and time. */
export function draftOf(inv: Invoice): Uint8Array {
  return encodeInvoice({ ...inv, invoiceCode: "", invoiceNumber: 0, issuedAt: 0 });
}

export class OfflineIssuer {
  readonly client: UkeyClient;
  readonly db: HostDb;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly sleep: Sleeper;
  private readonly retry: RetryPolicy;
  private identity: Identity | undefined;
  private purchases: PurchaseRecord[] | undefined;
  private types: InvoiceTypeEntry[] | undefined;
  private pki: BureauPki | undefined;
  private chain: Uint8Array[] | undefined;
  private requestCounter = 0;

  constructor(private readonly options: IssuerOptions) {
    this.client = options.client;
    this.db = options.db;
    this.clock = options.clock;
    this.rng = options.rng;
    this.sleep = options.sleep ?? realSleep;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  // ------------------------------------------------------------------ login

  /** The two passwords: the host system password (scrypt, local DB), then the Ukey PIN. Reconciles afterwards. */
  async login(credentials: { password: string; pin: string }): Promise<ReconcileReport> {
    checkPassword(this.db, credentials.password);
    await this.client.connect();
    await this.client.verifyPin(credentials.pin);
    const device = await this.client.getDeviceInfo();
    const taxpayer = await this.client.getTaxpayer();
    const bound = this.db.meta("deviceSerial");
    if (bound !== undefined && bound !== device.serialNumber) {
      throw new HostError("WRONG_DEVICE", `this database belongs to Ukey ${bound}, not ${device.serialNumber}`);
    }
    if (bound === undefined) this.db.setMeta("deviceSerial", device.serialNumber);
    this.identity = { serial: device.serialNumber, taxpayer, device };
    return this.reconcile();
  }

  get who(): Identity {
    if (!this.identity) throw new HostError("NOT_LOGGED_IN", "log in first (host password and Ukey PIN)");
    return this.identity;
  }

  // ------------------------------------------------------------------ drafts

  /** Build the draft the card will complete: seller fields come from the card's taxpayer record. */
  draft(input: InvoiceInput, red?: { originalCode: string; originalNumber: number }): Invoice {
    const t = this.who.taxpayer;
    let totalAmountFen = 0;
    let totalTaxFen = 0;
    for (const l of input.lines) {
      totalAmountFen += l.amountFen;
      totalTaxFen += l.taxFen;
    }
    const inv: Invoice = {
      kind: red ? InvoiceKind.RED : InvoiceKind.NORMAL, mode: IssueMode.OFFLINE, typeCode: input.typeCode, invoiceCode: "", invoiceNumber: 0, issuedAt: 0,
      taxpayerId: t.taxpayerId, loginAccount: t.loginAccount, machineNumber: t.machineNumber, sellerName: t.taxpayerName,
      buyerName: input.buyerName, buyerTaxId: input.buyerTaxId, originalCode: red?.originalCode ?? "", originalNumber: red?.originalNumber ?? 0,
      lines: input.lines.map((l) => ({ ...l })), totalAmountFen, totalTaxFen, remark: input.remark,
    };
    try {
      encodeInvoice(inv);
    } catch (error) {
      throw new HostError("BAD_INVOICE_INPUT", error instanceof Error ? error.message : String(error));
    }
    return inv;
  }

  // ------------------------------------------------------------------ issue, red, void

  /** Issue a normal invoice offline (or online with `online`). */
  async issue(input: InvoiceInput, options: IssueOptions = {}): Promise<InvoiceRow> {
    const draft = this.draft(input);
    return this.issueDraft(draft, options);
  }

  /**
   * Red-letter (credit) invoice against an original: by default the full remaining amount
   * with the original's lines; `input` gives a partial credit.
   */
  async red(originalCode: string, originalNumber: number, input?: InvoiceInput, options: IssueOptions = {}): Promise<InvoiceRow> {
    const original = this.db.invoice(originalCode, originalNumber);
    if (!original) throw new HostError("UNKNOWN_INVOICE", `no invoice ${originalCode}/${formatInvoiceNumber(originalNumber)} in the local database`);
    const o = decodeInvoice(original.invoice);
    const source: InvoiceInput = input ?? { typeCode: o.typeCode, buyerName: o.buyerName, buyerTaxId: o.buyerTaxId, remark: `红字发票 冲销 ${originalCode} ${formatInvoiceNumber(originalNumber)}`, lines: o.lines };
    return this.issueDraft(this.draft(source, { originalCode, originalNumber }), options);
  }

  private async issueDraft(draftIn: Invoice, options: IssueOptions): Promise<InvoiceRow> {
    const requestId = options.requestId ?? this.newRequestId();
    const draft: Invoice = { ...draftIn, mode: options.online ? IssueMode.ONLINE : IssueMode.OFFLINE };
    const bytes = encodeInvoice(draft);
    const previous = this.db.intentByRequest(requestId);
    if (previous) {
      if (previous.draft === null || !bytesEqual(previous.draft, bytes)) throw new HostError("BAD_ARGUMENT", `request id "${requestId}" was already used for another invoice`);
      if (previous.state === "open") await this.reconcile();
      const settled = this.db.intentByRequest(requestId) as IntentRow;
      if (settled.state === "done") {
        const done = this.db.invoice(settled.invoiceCode, settled.invoiceNumber) as InvoiceRow;
        if (done.printedAt === null && this.options.printer) await this.print(done);
        return this.db.invoice(settled.invoiceCode, settled.invoiceNumber) as InvoiceRow;
      }
      this.db.renameAbortedRequest(settled.id);
    }
    if (options.online) await this.requireAllUploaded();
    const predicted = await this.predictKey(draft.typeCode);
    const kind = draft.kind === InvoiceKind.RED ? "red" : "issue";
    const intent = this.db.addIntent({ requestId, kind, draft: bytes, invoiceCode: predicted.code, invoiceNumber: predicted.number, createdAt: this.clock.now() });
    let issued: IssuedInvoice;
    try {
      issued = kind === "red" ? await this.client.red(draft) : await this.client.issue(draft);
    } catch (error) {
      await this.afterFailedCall(intent, error);
      throw error;
    }
    const row = this.adoptIssued(issued, requestId);
    assert(bytesEqual(draftOf(decodeInvoice(issued.invoice)), bytes), "the Ukey returned an invoice that is not the draft it was sent");
    this.db.tx(() => {
      if (!this.db.invoice(row.invoiceCode, row.invoiceNumber)) this.db.putInvoice(row);
      this.db.completeIntent(intent.id, row.invoiceCode, row.invoiceNumber);
    });
    this.advancePrediction(row.invoiceCode, row.invoiceNumber);
    const stored = this.db.invoice(row.invoiceCode, row.invoiceNumber) as InvoiceRow;
    if (!this.options.printer) return stored;
    await this.print(stored);
    return this.db.invoice(row.invoiceCode, row.invoiceNumber) as InvoiceRow;
  }

  /** Void an invoice (the Ukey first, then the DB). */
  async voidInvoice(code: string, number: number, options: { requestId?: string } = {}): Promise<InvoiceRow> {
    const row = this.db.invoice(code, number);
    if (!row) throw new HostError("UNKNOWN_INVOICE", `no invoice ${code}/${formatInvoiceNumber(number)} in the local database`);
    if (row.voidedAt !== null) return row;
    const requestId = options.requestId ?? this.newRequestId();
    const intent = this.db.addIntent({ requestId, kind: "void", draft: null, invoiceCode: code, invoiceNumber: number, createdAt: this.clock.now() });
    let receipt;
    try {
      receipt = await this.client.voidInvoice(code, number);
    } catch (error) {
      await this.afterFailedCall(intent, error);
      throw error;
    }
    this.db.tx(() => {
      this.db.markVoided(code, number, receipt.voidedAt, receipt.signature);
      this.db.settleIntent(intent.id, "done");
    });
    return this.db.invoice(code, number) as InvoiceRow;
  }

  /** A refusal by the card changed nothing: abort the intent. A lost answer: reconcile. */
  private async afterFailedCall(intent: IntentRow, error: unknown): Promise<void> {
    this.purchases = undefined;
    if (error instanceof UkeyError && error.sw !== null) {
      this.db.settleIntent(intent.id, "aborted", error.message);
      return;
    }
    // Outcome unknown (no answer): leave the intent open; settle it now if the card answers again.
    try {
      await this.reconcile();
    } catch {
      // the card is still away: the next login reconciles
    }
  }

  private newRequestId(): string {
    this.requestCounter++;
    return `${this.clock.now()}-${hex(this.rng.bytes(8))}-${this.requestCounter}`;
  }

  /** Where the card will put the next invoice of this type (the first active batch with numbers left). */
  private async predictKey(typeCode: string): Promise<{ code: string; number: number }> {
    if (!this.purchases) this.purchases = await this.client.getPurchases();
    const b = this.purchases.find((p) => p.status === PurchaseStatus.ACTIVE && p.typeCode === typeCode && p.nextNumber < p.startNumber + p.count);
    return b ? { code: b.invoiceCode, number: b.nextNumber } : { code: "", number: 0 };
  }

  private advancePrediction(code: string, number: number): void {
    const b = this.purchases?.find((p) => p.invoiceCode === code && number >= p.startNumber && number < p.startNumber + p.count);
    if (!b) {
      this.purchases = undefined;
      return;
    }
    b.nextNumber = Math.max(b.nextNumber, number + 1);
    if (b.nextNumber >= b.startNumber + b.count) b.status = PurchaseStatus.USED_UP;
  }

  private async requireAllUploaded(): Promise<void> {
    const local = this.db.countPendingUpload();
    const { status } = await this.client.getLimits();
    if (local > 0 || status.pendingCount > 0) {
      throw new HostError("OFFLINE_DATA_PENDING", `online issuing resumes after upload: ${Math.max(local, status.pendingCount)} record(s) wait for upload`);
    }
  }

  /** The DB row of an invoice the card issued. */
  private adoptIssued(issued: IssuedInvoice, requestId: string | null): Omit<InvoiceRow, "voidedAt" | "voidSignature" | "uploaded" | "receiptId" | "printedAt"> {
    const inv = decodeInvoice(issued.invoice);
    return {
      invoiceCode: inv.invoiceCode, invoiceNumber: inv.invoiceNumber, seq: issued.seq, kind: inv.kind === InvoiceKind.RED ? "red" : "normal",
      mode: inv.mode === IssueMode.ONLINE ? "online" : "offline", issuedAt: inv.issuedAt, grandTotalFen: invoiceGrandTotal(inv), buyerName: inv.buyerName,
      originalCode: inv.originalCode, originalNumber: inv.originalNumber, invoice: issued.invoice, taxCode: issued.taxCode, signature: issued.signature, requestId,
    };
  }

  // ------------------------------------------------------------------ printing

  /** Render and hand to the printer; only invoices the card committed are in the DB, so only those print. */
  async print(row: InvoiceRow): Promise<string> {
    const html = await renderInvoiceHtml(row);
    if (this.options.printer) {
      await this.options.printer(html, row);
      this.db.markPrinted(row.invoiceCode, row.invoiceNumber, this.clock.now());
    }
    return html;
  }

  // ------------------------------------------------------------------ reconciliation

  /**
   * Settle every open intent against the card, then adopt every pending card event the
   * DB lacks. Needs the PIN verified (login).
   */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { committed: 0, aborted: 0, adopted: 0, voidsSettled: 0, uploadsSettled: 0 };
    const pending = await this.allPendingEvents();
    for (const intent of this.db.openIntents()) {
      const outcome = await this.settle(intent, pending);
      if (outcome === "done") report.committed++;
      else report.aborted++;
    }
    for (const e of pending) {
      const r = this.adoptEvent(e);
      report.adopted += r.issued;
      report.voidsSettled += r.voids;
    }
    report.uploadsSettled = await this.settleUploadFlags();
    this.purchases = undefined;
    return report;
  }

  private async settle(intent: IntentRow, pending: readonly UploadEvent[]): Promise<"done" | "aborted"> {
    const abort = (why: string): "aborted" => {
      this.db.settleIntent(intent.id, "aborted", why);
      return "aborted";
    };
    let stored: StoredInvoice | undefined;
    if (intent.invoiceCode !== "") {
      try {
        stored = await this.client.readInvoice(intent.invoiceCode, intent.invoiceNumber);
      } catch (error) {
        if (!isUkeyError(error, E.DATA_NOT_EXIST)) throw error;
      }
    }
    if (intent.kind === "void") {
      if (!stored || stored.state !== InvoiceState.VOIDED) return abort("the Ukey did not void it");
      const voidedAt = stored.voidedAt;
      this.db.tx(() => {
        const row = this.db.invoice(intent.invoiceCode, intent.invoiceNumber);
        if (row && row.voidedAt === null) this.db.markVoided(intent.invoiceCode, intent.invoiceNumber, voidedAt, new Uint8Array(0));
        this.db.settleIntent(intent.id, "done");
      });
      return "done";
    }
    const matches = (issued: IssuedInvoice) => intent.draft !== null && bytesEqual(draftOf(decodeInvoice(issued.invoice)), intent.draft);
    let issued = stored && matches(stored.issued) ? stored.issued : undefined;
    if (!issued) {
      // The prediction missed (the card used another number): an invoice with this draft that the DB lacks is this intent's.
      for (const e of pending) {
        if (e.kind !== EventKind.ISSUE || !matches(e.issued)) continue;
        const inv = decodeInvoice(e.issued.invoice);
        if (this.db.invoice(inv.invoiceCode, inv.invoiceNumber)) continue;
        issued = e.issued;
        break;
      }
    }
    if (!issued) return abort("the Ukey did not commit it");
    const found = issued;
    this.db.tx(() => {
      const row = this.adoptIssued(found, intent.requestId);
      if (!this.db.invoice(row.invoiceCode, row.invoiceNumber)) this.db.putInvoice(row);
      this.db.completeIntent(intent.id, row.invoiceCode, row.invoiceNumber);
    });
    return "done";
  }

  /**
   * Rows the DB still holds as not uploaded although the Ukey has the bureau's confirmation
   * (the host died between CONFIRM UPLOAD and its DB write), or reclaimed them by rollover
   * (only confirmed invoices are reclaimable).
   */
  private async settleUploadFlags(): Promise<number> {
    let settled = 0;
    for (const row of this.db.invoices({ uploaded: false })) {
      let confirmed: boolean;
      try {
        confirmed = ((await this.client.readInvoice(row.invoiceCode, row.invoiceNumber)).uploaded & UPLOADED_ISSUE) !== 0;
      } catch (error) {
        if (!isUkeyError(error, E.DATA_NOT_EXIST)) throw error;
        confirmed = true;
      }
      if (!confirmed) continue;
      this.db.markUploaded(row.invoiceCode, row.invoiceNumber, RECONCILED_RECEIPT);
      settled++;
    }
    return settled;
  }

  /** Every pending card event, oldest first (EXPORT UNUPLOADED, 16 at a time). */
  private async allPendingEvents(): Promise<UploadEvent[]> {
    const events: UploadEvent[] = [];
    let from = 0;
    for (let round = 0; round < MAX_ADOPT_ROUNDS; round++) {
      let batch;
      try {
        batch = await this.client.exportUnuploaded(from);
      } catch (error) {
        if (isUkeyError(error, E.DATA_NOT_EXIST)) break;
        throw error;
      }
      events.push(...batch.events);
      const last = batch.events[batch.events.length - 1];
      if (!batch.more || !last) break;
      from = last.seq + 1;
    }
    return events;
  }

  private adoptEvent(e: UploadEvent): { issued: number; voids: number } {
    if (e.kind === EventKind.ISSUE) {
      const row = this.adoptIssued(e.issued, null);
      if (this.db.invoice(row.invoiceCode, row.invoiceNumber)) return { issued: 0, voids: 0 };
      this.db.putInvoice(row);
      return { issued: 1, voids: 0 };
    }
    const row = this.db.invoice(e.code, e.number);
    if (!row) return { issued: 0, voids: 0 };
    // A void settled from READ INVOICE alone has no signature yet: take the card's signed event.
    if (row.voidedAt !== null && (row.voidSignature?.length ?? 0) > 0) return { issued: 0, voids: 0 };
    this.db.markVoided(e.code, e.number, e.at, e.signature);
    return { issued: 0, voids: row.voidedAt === null ? 1 : 0 };
  }

  // ------------------------------------------------------------------ bureau: PKI, sync

  private requireBureau(): BureauHttp {
    if (!this.options.bureau) throw new HostError("NO_BUREAU", "this needs the bureau: give --server URL (and --ca FILE)");
    return this.options.bureau;
  }

  /** The bureau's SM2 certificates, checked against the root CA the Ukey holds (slot 2) when it has one. */
  async bureauPki(): Promise<BureauPki> {
    if (this.pki) return this.pki;
    const j = await this.withRetry(() => this.requireBureau().get<{ root?: unknown; intermediate?: unknown; receiptSigner?: unknown }>("/pki"));
    let pki: BureauPki;
    try {
      const cert = (v: unknown, what: string) => {
        if (typeof v !== "string") throw new Error(`${what} missing`);
        return parseCertificate(pemToDer(v, "CERTIFICATE"));
      };
      pki = { root: cert(j.root, "root"), intermediate: cert(j.intermediate, "intermediate"), signer: cert(j.receiptSigner, "receiptSigner") };
    } catch (error) {
      throw new HostError("BAD_BUREAU_ANSWER", `GET /pki: ${error instanceof Error ? error.message : String(error)}`);
    }
    let cardRoot: Uint8Array | undefined;
    try {
      cardRoot = await this.client.readCert(2);
    } catch (error) {
      if (!isUkeyError(error, E.DATA_NOT_EXIST)) throw error;
    }
    if (cardRoot && !bytesEqual(cardRoot, pki.root.der)) throw new HostError("BAD_BUREAU_ANSWER", "the bureau's SM2 root differs from the root CA on the Ukey");
    const chain = verifyChain({ roots: [pki.root], intermediates: [pki.intermediate], leaf: pki.signer, at: this.clock.now() });
    if (!chain.ok) throw new HostError("BAD_BUREAU_ANSWER", `receipt signer certificate: ${chain.reason}: ${chain.message}`);
    this.pki = pki;
    return pki;
  }

  private verifySigned(text: string, signatureB64: unknown, signer: CertificateInfo, what: string): void {
    if (typeof signatureB64 !== "string" || !signer.publicKey) throw new HostError("BAD_BUREAU_ANSWER", `${what}: no signature`);
    const ok = sm2VerifyStrict(signer.publicKey, new TextEncoder().encode(text), new Uint8Array(Buffer.from(signatureB64, "base64")));
    if (!ok) throw new HostError("BAD_BUREAU_ANSWER", `${what}: the bureau's signature does not verify`);
  }

  /** GET /crl, verified with the device CA; stored in the DB for diagnose. */
  async fetchCrl(): Promise<CrlInfo> {
    const pki = await this.bureauPki();
    const der = await this.withRetry(() => this.requireBureau().getBytes("/crl"));
    let crl: CrlInfo;
    try {
      crl = parseCrl(der);
    } catch (error) {
      throw new HostError("BAD_BUREAU_ANSWER", `GET /crl: ${error instanceof Error ? error.message : String(error)}`);
    }
    const check = verifyCrl(crl, pki.intermediate, this.clock.now());
    if (!check.ok && check.reason !== "CRL_STALE") throw new HostError("BAD_BUREAU_ANSWER", `CRL: ${check.reason}: ${check.message}`);
    this.db.setMeta("crl", hex(der));
    return crl;
  }

  /** Online sync: stock, limits and restrictions (signed), relayed to the Ukey as issuer messages; CRL. */
  async sync(): Promise<SyncReport> {
    const who = this.who;
    const bureau = this.requireBureau();
    const pki = await this.bureauPki();
    const crl = await this.fetchCrl();
    const [purchases, types] = [await this.client.getPurchases(), await this.client.getInvoiceTypes()];
    const challenge = await this.client.getChallenge();
    const answer = await this.withRetry(() => bureau.get<{ payload?: unknown; payloadText?: unknown; signature?: unknown; issuerMessages?: unknown }>(
      "/sync", { taxpayerId: who.taxpayer.taxpayerId, deviceSerial: who.serial, challenge: hex(challenge) },
    ));
    if (typeof answer.payloadText !== "string") throw new HostError("BAD_BUREAU_ANSWER", "GET /sync: payloadText missing");
    this.verifySigned(answer.payloadText, answer.signature, pki.signer, "sync payload");
    const payload = parsePayload(answer.payloadText);
    if (payload.taxpayerId !== who.taxpayer.taxpayerId || payload.deviceSerial !== who.serial) throw new HostError("BAD_BUREAU_ANSWER", "sync payload names another taxpayer or device");
    let messages = parseMessages(answer.issuerMessages);
    if (messages.length === 0) {
      if (!this.options.agent) throw new HostError("NO_ISSUER_AGENT", "the bureau sent no issuer messages and no issuer agent is configured");
      messages = await this.options.agent.syncMessages({ challenge, serial: who.serial, payload, purchases, types });
    }
    for (const m of messages) await this.client.relay(m);
    this.db.setMeta("sync", answer.payloadText);
    this.db.setMeta("lastSyncAt", String(this.clock.now()));
    this.purchases = undefined;
    return {
      serverTime: payload.serverTime, clockSkewMs: this.clock.now() - payload.serverTime, stockRanges: payload.stock.length, messagesApplied: messages.length,
      crlNumber: crl.crlNumber,
    };
  }

  // ------------------------------------------------------------------ upload

  private async withRetry<T>(f: () => Promise<T>, counter?: { attempts: number }): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (counter) counter.attempts++;
      try {
        return await f();
      } catch (error) {
        const retryable = error instanceof BureauHttpError && error.retryable;
        if (!retryable || attempt >= this.retry.attempts) throw error;
        const delay = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
        await this.sleep(delay);
      }
    }
  }

  private async deviceChain(): Promise<Uint8Array[]> {
    if (!this.chain) this.chain = [await this.client.readCert(0), await this.client.readCert(1)];
    return this.chain;
  }

  /**
   * Upload every pending record: the Ukey's signed export batches (issued, red-letter and
   * void events), retries with exponential backoff, signed receipts verified, and the
   * bureau's confirmation (issuer messages for the card's challenge) relayed to the Ukey so
   * rollover may reclaim. Idempotent (the bureau stores each invoice once and replays
   * receipts) and resumable: the Ukey keeps events pending until confirmed.
   */
  async upload(): Promise<UploadReport> {
    const who = this.who;
    const bureau = this.requireBureau();
    const report: UploadReport = { uploaded: 0, batches: 0, receipts: [], confirmedThrough: 0, attempts: 0 };
    const pki = await this.bureauPki();
    const certificates = (await this.deviceChain()).map(b64);
    for (let round = 0; round < MAX_ADOPT_ROUNDS; round++) {
      let exported;
      try {
        exported = await this.client.exportRaw(0);
      } catch (error) {
        if (isUkeyError(error, E.DATA_NOT_EXIST)) break;
        throw error;
      }
      const events = exported.batch.events;
      for (const e of events) this.adoptEvent(e);
      const challenge = await this.client.getChallenge();
      const body = {
        taxpayerId: who.taxpayer.taxpayerId, deviceSerial: who.serial, certificates, exportBatch: b64(exported.bytes),
        clientTime: this.clock.now(), challenge: hex(challenge),
      };
      const answer = await this.withRetry(() => bureau.post<{ receiptText?: unknown; signature?: unknown; issuerMessages?: unknown }>("/upload", body), report);
      report.batches++;
      const receipt = this.checkReceipt(answer, pki, who);
      const through = receipt.confirmThrough ?? 0;
      assert(Number.isSafeInteger(through) && through >= 0, "receipt confirmThrough is not a sequence number");
      const held = events.filter((e) => e.seq <= through);
      assert(held.every((e, i) => e === events[i]), "the bureau confirmed events out of order");
      if (held.length > 0) {
        await this.relayConfirmation(parseMessages(answer.issuerMessages), through);
        this.db.tx(() => {
          for (const e of held) {
            if (e.kind !== EventKind.ISSUE) continue;
            const inv = decodeInvoice(e.issued.invoice);
            this.db.markUploaded(inv.invoiceCode, inv.invoiceNumber, receipt.receiptId);
          }
          this.db.putReceipt({ receiptId: receipt.receiptId, receiptText: answer.receiptText as string, signature: answer.signature as string, throughSeq: through, storedAt: this.clock.now() });
        });
        report.uploaded += held.filter((e) => e.kind === EventKind.ISSUE).length;
        report.confirmedThrough = through;
        if (!report.receipts.includes(receipt.receiptId)) report.receipts.push(receipt.receiptId);
      }
      if (held.length < events.length) {
        const r = receipt.rejected[0];
        report.stopped = { code: "UPLOAD_REJECTED", message: r ? `${r.invoiceCode ?? "?"}/${r.invoiceNumber ?? "?"}: ${r.code}: ${r.message}` : `the bureau holds events only through ${through}` };
        break;
      }
    }
    return report;
  }

  /**
   * The paper's "on reconnection, upload automatically": when the bureau answers /health,
   * upload everything pending; when it does not, say why and change nothing. Network and
   * server failures are reported, not thrown (the caller goes on working offline).
   */
  async uploadIfOnline(): Promise<UploadReport | { offline: string }> {
    const bureau = this.options.bureau;
    if (!bureau) return { offline: "no bureau configured" };
    try {
      await bureau.get("/health");
      return await this.upload();
    } catch (error) {
      if (error instanceof BureauHttpError) return { offline: error.message };
      throw error;
    }
  }

  /** Relay the bureau's EXTERNAL AUTHENTICATE + CONFIRM UPLOAD; the agent stands in when the bureau sent none. */
  private async relayConfirmation(messages: Uint8Array[], through: number): Promise<void> {
    let last: Uint8Array = new Uint8Array(0);
    if (messages.length > 0) {
      for (const m of messages) last = await this.client.relay(m);
      if (this.client.remaining(last) === 0) return;
    }
    await this.confirmThrough(through);
  }

  private checkReceipt(answer: { receipt?: unknown; receiptText?: unknown; signature?: unknown }, pki: BureauPki, who: Identity): UploadReceipt {
    if (typeof answer.receiptText !== "string") throw new HostError("BAD_BUREAU_ANSWER", "upload: receiptText missing");
    this.verifySigned(answer.receiptText, answer.signature, pki.signer, "upload receipt");
    let r: UploadReceipt;
    try {
      r = JSON.parse(answer.receiptText) as UploadReceipt;
    } catch {
      throw new HostError("BAD_BUREAU_ANSWER", "upload: receiptText is not JSON");
    }
    if (r.taxpayerId !== who.taxpayer.taxpayerId || r.deviceSerial !== who.serial || !Array.isArray(r.accepted) || !Array.isArray(r.rejected) || typeof r.receiptId !== "string") {
      throw new HostError("BAD_BUREAU_ANSWER", "upload receipt is malformed or names another device");
    }
    return r;
  }

  /** UKEY_QrScjg through `through`, with the bureau's issuer messages (16 events per card transaction). */
  private async confirmThrough(through: number): Promise<void> {
    if (!this.options.agent) throw new HostError("NO_ISSUER_AGENT", "no issuer agent to build the upload confirmation for the Ukey");
    for (let round = 0; round < MAX_ADOPT_ROUNDS; round++) {
      const challenge = await this.client.getChallenge();
      const messages = await this.options.agent.confirmMessages({ challenge, serial: this.who.serial, throughSeq: through });
      let last: Uint8Array = new Uint8Array(0);
      for (const m of messages) last = await this.client.relay(m);
      if (this.client.remaining(last) === 0) return;
    }
  }

  // ------------------------------------------------------------------ reading

  list(): InvoiceRow[] {
    return this.db.invoices();
  }

  async status(): Promise<{ pendingOnUkey: number; pendingInDb: number; offlineCount: number; offlineAmountFen: number; windowEndsAt: number; state: number }> {
    const { status } = await this.client.getLimits();
    return {
      pendingOnUkey: status.pendingCount, pendingInDb: this.db.countPendingUpload(), offlineCount: status.offlineCount,
      offlineAmountFen: status.offlineAmountFen, windowEndsAt: status.windowEndsAt, state: status.state,
    };
  }
}

interface UploadReceipt {
  receiptId: string;
  confirmThrough: number | null;
  taxpayerId: string;
  deviceSerial: string;
  accepted: { invoiceCode: string; invoiceNumber: string }[];
  rejected: { index: number; invoiceCode?: string; invoiceNumber?: string; code: string; message: string }[];
}

/** The signed sync payload, shape-checked (a verified signature does not make it well formed). */
function parsePayload(text: string): SyncPayload {
  let p: SyncPayload;
  try {
    p = JSON.parse(text) as SyncPayload;
  } catch {
    throw new HostError("BAD_BUREAU_ANSWER", "sync payload is not JSON");
  }
  const ok = typeof p === "object" && p !== null && typeof p.taxpayerId === "string" && typeof p.deviceSerial === "string" && Number.isSafeInteger(p.serverTime)
    && Array.isArray(p.stock) && p.stock.every((r) => typeof r?.invoiceCode === "string" && Number.isSafeInteger(r.startNumber) && Number.isSafeInteger(r.count))
    && typeof p.limits === "object" && p.limits !== null && typeof p.restrictions === "object" && p.restrictions !== null;
  if (!ok) throw new HostError("BAD_BUREAU_ANSWER", "sync payload is malformed");
  return p;
}

function parseMessages(v: unknown): Uint8Array[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new HostError("BAD_BUREAU_ANSWER", "issuerMessages must be an array");
  return v.map((m, i) => {
    const apdu = (m as { apdu?: unknown } | null)?.apdu;
    if (typeof apdu !== "string" || !/^([0-9a-fA-F]{2}){4,}$/.test(apdu)) throw new HostError("BAD_BUREAU_ANSWER", `issuerMessages[${i}].apdu must be hex`);
    return new Uint8Array(Buffer.from(apdu, "hex"));
  });
}
