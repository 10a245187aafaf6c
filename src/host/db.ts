/**
 * The issuer's local database (SQLite via better-sqlite3, WAL, synchronous FULL).
 *
 * The Ukey is the source of truth. The DB holds:
 *  - intents: written BEFORE every Ukey call that changes state (issue, red, void), with the
 *    invoice key the card is expected to use; settled after the call or, after a crash, by
 *    reconciliation against the card;
 *  - invoices: written only AFTER the card committed (so nothing is printed that the card did
 *    not commit); printed_at is set after printing;
 *  - receipts: the bureau's signed upload receipts; sync: the last verified sync payload; crl;
 *  - meta: the host system password (scrypt hash + salt) and settings.
 */
import Database from "better-sqlite3";

export const DB_SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('issue', 'red', 'void')),
  draft BLOB,
  invoice_code TEXT NOT NULL,
  invoice_number INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'done', 'aborted')),
  error TEXT);
CREATE TABLE IF NOT EXISTS invoices (
  invoice_code TEXT NOT NULL,
  invoice_number INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('normal', 'red')),
  mode TEXT NOT NULL CHECK (mode IN ('offline', 'online')),
  issued_at INTEGER NOT NULL,
  grand_total_fen INTEGER NOT NULL,
  buyer_name TEXT NOT NULL,
  original_code TEXT NOT NULL,
  original_number INTEGER NOT NULL,
  invoice BLOB NOT NULL,
  tax_code TEXT NOT NULL,
  signature BLOB NOT NULL,
  voided_at INTEGER,
  void_signature BLOB,
  uploaded INTEGER NOT NULL DEFAULT 0,
  receipt_id TEXT,
  printed_at INTEGER,
  request_id TEXT,
  PRIMARY KEY (invoice_code, invoice_number));
CREATE TABLE IF NOT EXISTS receipts (
  receipt_id TEXT PRIMARY KEY, receipt_text TEXT NOT NULL, signature TEXT NOT NULL, through_seq INTEGER NOT NULL, stored_at INTEGER NOT NULL);
`;

export type IntentKind = "issue" | "red" | "void";

export interface IntentRow {
  id: number;
  requestId: string;
  kind: IntentKind;
  draft: Uint8Array | null;
  invoiceCode: string;
  invoiceNumber: number;
  createdAt: number;
  state: "open" | "done" | "aborted";
  error: string | null;
}

export interface InvoiceRow {
  invoiceCode: string;
  invoiceNumber: number;
  seq: number;
  kind: "normal" | "red";
  mode: "offline" | "online";
  issuedAt: number;
  grandTotalFen: number;
  buyerName: string;
  originalCode: string;
  originalNumber: number;
  invoice: Uint8Array;
  taxCode: string;
  signature: Uint8Array;
  voidedAt: number | null;
  voidSignature: Uint8Array | null;
  uploaded: boolean;
  receiptId: string | null;
  printedAt: number | null;
  requestId: string | null;
}

type Raw = Record<string, unknown>;

function bytes(v: unknown): Uint8Array {
  const b = v as Buffer;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
}

function intentOf(r: Raw): IntentRow {
  return {
    id: r.id as number, requestId: r.request_id as string, kind: r.kind as IntentKind, draft: r.draft == null ? null : bytes(r.draft),
    invoiceCode: r.invoice_code as string, invoiceNumber: r.invoice_number as number, createdAt: r.created_at as number,
    state: r.state as IntentRow["state"], error: (r.error as string | null) ?? null,
  };
}

function invoiceOf(r: Raw): InvoiceRow {
  return {
    invoiceCode: r.invoice_code as string, invoiceNumber: r.invoice_number as number, seq: r.seq as number, kind: r.kind as InvoiceRow["kind"],
    mode: r.mode as InvoiceRow["mode"], issuedAt: r.issued_at as number, grandTotalFen: r.grand_total_fen as number, buyerName: r.buyer_name as string,
    originalCode: r.original_code as string, originalNumber: r.original_number as number, invoice: bytes(r.invoice), taxCode: r.tax_code as string,
    signature: bytes(r.signature), voidedAt: (r.voided_at as number | null) ?? null, voidSignature: r.void_signature == null ? null : bytes(r.void_signature),
    uploaded: r.uploaded === 1, receiptId: (r.receipt_id as string | null) ?? null, printedAt: (r.printed_at as number | null) ?? null,
    requestId: (r.request_id as string | null) ?? null,
  };
}

export class HostDb {
  readonly db: Database.Database;

  constructor(readonly path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("foreign_keys = ON");
    this.db.exec(SCHEMA);
    const v = this.meta("schemaVersion");
    if (v === undefined) this.setMeta("schemaVersion", String(DB_SCHEMA_VERSION));
    else if (v !== String(DB_SCHEMA_VERSION)) throw new Error(`local database ${path} has schema ${v}; this host knows ${DB_SCHEMA_VERSION}`);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  tx<T>(f: () => T): T {
    return this.db.transaction(f)();
  }

  meta(key: string): string | undefined {
    const r = this.db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    return r?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  // ------------------------------------------------------------------ intents

  addIntent(i: { requestId: string; kind: IntentKind; draft: Uint8Array | null; invoiceCode: string; invoiceNumber: number; createdAt: number }): IntentRow {
    const info = this.db.prepare(
      "INSERT INTO intents (request_id, kind, draft, invoice_code, invoice_number, created_at, state) VALUES (?, ?, ?, ?, ?, ?, 'open')",
    ).run(i.requestId, i.kind, i.draft ? Buffer.from(i.draft) : null, i.invoiceCode, i.invoiceNumber, i.createdAt);
    return this.intentById(Number(info.lastInsertRowid)) as IntentRow;
  }

  intentById(id: number): IntentRow | undefined {
    const r = this.db.prepare("SELECT * FROM intents WHERE id = ?").get(id) as Raw | undefined;
    return r ? intentOf(r) : undefined;
  }

  intentByRequest(requestId: string): IntentRow | undefined {
    const r = this.db.prepare("SELECT * FROM intents WHERE request_id = ?").get(requestId) as Raw | undefined;
    return r ? intentOf(r) : undefined;
  }

  openIntents(): IntentRow[] {
    return (this.db.prepare("SELECT * FROM intents WHERE state = 'open' ORDER BY id").all() as Raw[]).map(intentOf);
  }

  settleIntent(id: number, state: "done" | "aborted", error: string | null = null): void {
    const r = this.db.prepare("UPDATE intents SET state = ?, error = ? WHERE id = ? AND state = 'open'").run(state, error, id);
    if (r.changes !== 1) throw new Error(`intent ${id} is not open`);
  }

  /** Settle an intent as done under the key the Ukey actually used. */
  completeIntent(id: number, invoiceCode: string, invoiceNumber: number): void {
    const r = this.db.prepare("UPDATE intents SET state = 'done', invoice_code = ?, invoice_number = ? WHERE id = ? AND state = 'open'").run(invoiceCode, invoiceNumber, id);
    if (r.changes !== 1) throw new Error(`intent ${id} is not open`);
  }

  /** Re-key an open intent (the abandoned attempt's request id is freed for a retry). */
  renameAbortedRequest(id: number): void {
    this.db.prepare("UPDATE intents SET request_id = request_id || '#aborted-' || id WHERE id = ? AND state = 'aborted'").run(id);
  }

  // ------------------------------------------------------------------ invoices

  putInvoice(row: Omit<InvoiceRow, "voidedAt" | "voidSignature" | "uploaded" | "receiptId" | "printedAt">): void {
    this.db.prepare(`INSERT INTO invoices (invoice_code, invoice_number, seq, kind, mode, issued_at, grand_total_fen, buyer_name, original_code,
      original_number, invoice, tax_code, signature, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      row.invoiceCode, row.invoiceNumber, row.seq, row.kind, row.mode, row.issuedAt, row.grandTotalFen, row.buyerName, row.originalCode,
      row.originalNumber, Buffer.from(row.invoice), row.taxCode, Buffer.from(row.signature), row.requestId,
    );
  }

  invoice(code: string, number: number): InvoiceRow | undefined {
    const r = this.db.prepare("SELECT * FROM invoices WHERE invoice_code = ? AND invoice_number = ?").get(code, number) as Raw | undefined;
    return r ? invoiceOf(r) : undefined;
  }

  invoiceBySeq(seq: number): InvoiceRow | undefined {
    const r = this.db.prepare("SELECT * FROM invoices WHERE seq = ?").get(seq) as Raw | undefined;
    return r ? invoiceOf(r) : undefined;
  }

  invoices(filter: { uploaded?: boolean } = {}): InvoiceRow[] {
    const where = filter.uploaded === undefined ? "" : `WHERE uploaded = ${filter.uploaded ? 1 : 0}`;
    return (this.db.prepare(`SELECT * FROM invoices ${where} ORDER BY seq`).all() as Raw[]).map(invoiceOf);
  }

  markVoided(code: string, number: number, voidedAt: number, signature: Uint8Array): void {
    this.db.prepare("UPDATE invoices SET voided_at = ?, void_signature = ? WHERE invoice_code = ? AND invoice_number = ?").run(voidedAt, Buffer.from(signature), code, number);
  }

  markPrinted(code: string, number: number, at: number): void {
    this.db.prepare("UPDATE invoices SET printed_at = ? WHERE invoice_code = ? AND invoice_number = ?").run(at, code, number);
  }

  markUploaded(code: string, number: number, receiptId: string): void {
    this.db.prepare("UPDATE invoices SET uploaded = 1, receipt_id = ? WHERE invoice_code = ? AND invoice_number = ?").run(receiptId, code, number);
  }

  countPendingUpload(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM invoices WHERE uploaded = 0").get() as { n: number }).n;
  }

  // ------------------------------------------------------------------ receipts

  putReceipt(r: { receiptId: string; receiptText: string; signature: string; throughSeq: number; storedAt: number }): void {
    this.db.prepare("INSERT OR IGNORE INTO receipts (receipt_id, receipt_text, signature, through_seq, stored_at) VALUES (?, ?, ?, ?, ?)").run(
      r.receiptId, r.receiptText, r.signature, r.throughSeq, r.storedAt,
    );
  }

  receiptCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM receipts").get() as { n: number }).n;
  }
}
