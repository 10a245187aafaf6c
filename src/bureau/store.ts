/**
 * The bureau's database (SQLite through better-sqlite3, WAL, synchronous FULL): taxpayers
 * with their stock and limits, devices with their tax-control keys, invoices stored once
 * each, signed receipts by batch digest (so a re-upload gets the same receipt), revocations.
 */
import Database from "better-sqlite3";

export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS taxpayers (
  taxpayer_id TEXT PRIMARY KEY, name TEXT NOT NULL, limits_json TEXT NOT NULL, restrictions_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stock (
  taxpayer_id TEXT NOT NULL REFERENCES taxpayers(taxpayer_id), invoice_code TEXT NOT NULL,
  start_number INTEGER NOT NULL, count INTEGER NOT NULL CHECK (count > 0), type_code TEXT NOT NULL, purchased_on TEXT NOT NULL,
  PRIMARY KEY (invoice_code, start_number));
CREATE TABLE IF NOT EXISTS devices (
  device_serial TEXT PRIMARY KEY, taxpayer_id TEXT NOT NULL REFERENCES taxpayers(taxpayer_id), tax_control_key BLOB NOT NULL,
  card_key BLOB, confirmed_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS invoices (
  invoice_code TEXT NOT NULL, invoice_number TEXT NOT NULL, taxpayer_id TEXT NOT NULL, device_serial TEXT NOT NULL,
  kind TEXT NOT NULL, issued_at INTEGER NOT NULL, total_fen INTEGER NOT NULL, data BLOB NOT NULL, signature BLOB NOT NULL,
  received_at INTEGER NOT NULL, receipt_id TEXT NOT NULL, voided_at INTEGER, PRIMARY KEY (invoice_code, invoice_number));
CREATE TABLE IF NOT EXISTS receipts (
  batch_digest TEXT PRIMARY KEY, receipt_id TEXT NOT NULL UNIQUE, receipt_text TEXT NOT NULL, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS revoked (serial TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL);
`;

export interface Limits {
  /** Longest time the Ukey may issue offline before it must upload (the paper: default 3 days). */
  offlineHours: number;
  /** Largest single invoice total, fen. */
  maxInvoiceFen: number;
  /** Largest total of invoices issued offline before an upload, fen. */
  maxOfflineTotalFen: number;
  /** Most invoices issued offline before an upload. */
  maxOfflineCount: number;
}

export interface Restrictions {
  /** Issuing blocked by the bureau (e.g. abnormal taxpayer). */
  issuingLocked: boolean;
  /** Invoice kinds the taxpayer may issue. */
  allowedKinds: string[];
}

export interface StockRange {
  /** Invoice type code, 5 ASCII (the purchase record's first field). */
  typeCode: string;
  invoiceCode: string;
  startNumber: number;
  count: number;
  /** Purchase date, YYYYMMDD. */
  purchasedOn: string;
}

export interface TaxpayerRecord {
  taxpayerId: string;
  name: string;
  limits: Limits;
  restrictions: Restrictions;
  stock: StockRange[];
}

export interface StoredInvoice {
  invoiceCode: string;
  invoiceNumber: string;
  taxpayerId: string;
  deviceSerial: string;
  kind: string;
  issuedAt: number;
  totalFen: number;
  data: Uint8Array;
  signature: Uint8Array;
  receivedAt: number;
  receiptId: string;
  /** Void time (ms) once a signed void event was received. */
  voidedAt?: number | undefined;
}

export interface StoredReceipt {
  receiptId: string;
  receiptText: string;
  signature: Uint8Array;
}

function u8(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

export interface DeviceRecord {
  taxpayerId: string;
  taxControlKey: Uint8Array;
  /** The card's bureau (secure-messaging) key when registered; else derived from the master key. */
  cardKey: Uint8Array | undefined;
  /** Highest card event sequence received with every earlier one. */
  confirmedSeq: number;
}

export interface BatchEffects {
  voids?: { invoiceCode: string; invoiceNumber: string; voidedAt: number }[];
  confirmed?: { deviceSerial: string; seq: number };
}

export class BureauStore {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("foreign_keys = ON");
    this.db.exec(SCHEMA);
    const version = this.db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get() as string | undefined;
    if (version === undefined) this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (version !== String(SCHEMA_VERSION)) throw new Error(`bureau database ${path} has schema ${version}, expected ${SCHEMA_VERSION}`);
    this.statements = {
      getMeta: this.db.prepare("SELECT value FROM meta WHERE key = ?").pluck(),
      setMeta: this.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      upsertTaxpayer: this.db.prepare(`INSERT INTO taxpayers (taxpayer_id, name, limits_json, restrictions_json) VALUES (?, ?, ?, ?)
        ON CONFLICT(taxpayer_id) DO UPDATE SET name = excluded.name, limits_json = excluded.limits_json, restrictions_json = excluded.restrictions_json`),
      getTaxpayer: this.db.prepare("SELECT taxpayer_id, name, limits_json, restrictions_json FROM taxpayers WHERE taxpayer_id = ?"),
      deleteStock: this.db.prepare("DELETE FROM stock WHERE taxpayer_id = ?"),
      insertStock: this.db.prepare("INSERT INTO stock (taxpayer_id, invoice_code, start_number, count, type_code, purchased_on) VALUES (?, ?, ?, ?, ?, ?)"),
      getStock: this.db.prepare("SELECT invoice_code, start_number, count, type_code, purchased_on FROM stock WHERE taxpayer_id = ? ORDER BY invoice_code, start_number"),
      stockOwner: this.db.prepare("SELECT taxpayer_id FROM stock WHERE invoice_code = ? AND start_number <= ? AND start_number + count > ?").pluck(),
      upsertDevice: this.db.prepare(`INSERT INTO devices (device_serial, taxpayer_id, tax_control_key, card_key) VALUES (?, ?, ?, ?)
        ON CONFLICT(device_serial) DO UPDATE SET taxpayer_id = excluded.taxpayer_id, tax_control_key = excluded.tax_control_key, card_key = excluded.card_key`),
      getDevice: this.db.prepare("SELECT taxpayer_id, tax_control_key, card_key, confirmed_seq FROM devices WHERE device_serial = ?"),
      setConfirmed: this.db.prepare("UPDATE devices SET confirmed_seq = ? WHERE device_serial = ? AND confirmed_seq < ?"),
      voidInvoice: this.db.prepare("UPDATE invoices SET voided_at = ? WHERE invoice_code = ? AND invoice_number = ? AND voided_at IS NULL"),
      getInvoice: this.db.prepare("SELECT * FROM invoices WHERE invoice_code = ? AND invoice_number = ?"),
      insertInvoice: this.db.prepare(`INSERT INTO invoices (invoice_code, invoice_number, taxpayer_id, device_serial, kind, issued_at, total_fen, data, signature, received_at, receipt_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      countInvoices: this.db.prepare("SELECT COUNT(*) FROM invoices").pluck(),
      getReceipt: this.db.prepare("SELECT receipt_id, receipt_text, signature FROM receipts WHERE batch_digest = ?"),
      insertReceipt: this.db.prepare("INSERT INTO receipts (batch_digest, receipt_id, receipt_text, signature) VALUES (?, ?, ?, ?)"),
      countReceipts: this.db.prepare("SELECT COUNT(*) FROM receipts").pluck(),
      revoke: this.db.prepare("INSERT INTO revoked (serial, revoked_at) VALUES (?, ?) ON CONFLICT(serial) DO NOTHING"),
      listRevoked: this.db.prepare("SELECT serial, revoked_at FROM revoked ORDER BY serial"),
    };
  }

  close(): void {
    this.db.close();
  }

  meta(key: string): string | undefined {
    return this.statements.getMeta.get(key) as string | undefined;
  }

  setMeta(key: string, value: string): void {
    this.statements.setMeta.run(key, value);
  }

  /** Replaces a taxpayer and its stock atomically; stock ranges may not overlap another taxpayer's. */
  putTaxpayer(record: TaxpayerRecord): void {
    this.db.transaction(() => {
      this.statements.upsertTaxpayer.run(record.taxpayerId, record.name, JSON.stringify(record.limits), JSON.stringify(record.restrictions));
      this.statements.deleteStock.run(record.taxpayerId);
      for (const r of record.stock) this.statements.insertStock.run(record.taxpayerId, r.invoiceCode, r.startNumber, r.count, r.typeCode, r.purchasedOn);
    })();
  }

  taxpayer(taxpayerId: string): TaxpayerRecord | undefined {
    const row = this.statements.getTaxpayer.get(taxpayerId) as { taxpayer_id: string; name: string; limits_json: string; restrictions_json: string } | undefined;
    if (!row) return undefined;
    const stock = (this.statements.getStock.all(taxpayerId) as { invoice_code: string; start_number: number; count: number; type_code: string; purchased_on: string }[])
      .map((s) => ({ typeCode: s.type_code, invoiceCode: s.invoice_code, startNumber: s.start_number, count: s.count, purchasedOn: s.purchased_on }));
    return { taxpayerId: row.taxpayer_id, name: row.name, limits: JSON.parse(row.limits_json), restrictions: JSON.parse(row.restrictions_json), stock };
  }

  /** The taxpayer to whom the bureau sold this invoice number, if any. */
  stockOwner(invoiceCode: string, invoiceNumber: number): string | undefined {
    return this.statements.stockOwner.get(invoiceCode, invoiceNumber, invoiceNumber) as string | undefined;
  }

  putDevice(deviceSerial: string, taxpayerId: string, taxControlKey: Uint8Array, cardKey: Uint8Array | undefined): void {
    this.statements.upsertDevice.run(deviceSerial, taxpayerId, Buffer.from(taxControlKey), cardKey ? Buffer.from(cardKey) : null);
  }

  device(deviceSerial: string): DeviceRecord | undefined {
    const row = this.statements.getDevice.get(deviceSerial) as { taxpayer_id: string; tax_control_key: Buffer; card_key: Buffer | null; confirmed_seq: number } | undefined;
    return row ? { taxpayerId: row.taxpayer_id, taxControlKey: u8(row.tax_control_key), cardKey: row.card_key ? u8(row.card_key) : undefined, confirmedSeq: row.confirmed_seq } : undefined;
  }

  invoice(invoiceCode: string, invoiceNumber: string): StoredInvoice | undefined {
    const row = this.statements.getInvoice.get(invoiceCode, invoiceNumber) as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      invoiceCode: row.invoice_code as string, invoiceNumber: row.invoice_number as string, taxpayerId: row.taxpayer_id as string,
      deviceSerial: row.device_serial as string, kind: row.kind as string, issuedAt: row.issued_at as number, totalFen: row.total_fen as number,
      data: u8(row.data as Buffer), signature: u8(row.signature as Buffer), receivedAt: row.received_at as number, receiptId: row.receipt_id as string,
      voidedAt: (row.voided_at as number | null) ?? undefined,
    };
  }

  invoiceCount(): number {
    return this.statements.countInvoices.get() as number;
  }

  receiptCount(): number {
    return this.statements.countReceipts.get() as number;
  }

  receipt(batchDigest: string): StoredReceipt | undefined {
    const row = this.statements.getReceipt.get(batchDigest) as { receipt_id: string; receipt_text: string; signature: Buffer } | undefined;
    return row ? { receiptId: row.receipt_id, receiptText: row.receipt_text, signature: u8(row.signature) } : undefined;
  }

  /** Stores the new invoices, voids, the device's confirmed event and the receipt in one transaction: all or nothing. */
  commitBatch(batchDigest: string, receipt: StoredReceipt, invoices: readonly StoredInvoice[], effects: BatchEffects = {}): void {
    this.db.transaction(() => {
      for (const i of invoices) {
        this.statements.insertInvoice.run(i.invoiceCode, i.invoiceNumber, i.taxpayerId, i.deviceSerial, i.kind, i.issuedAt, i.totalFen,
          Buffer.from(i.data), Buffer.from(i.signature), i.receivedAt, i.receiptId);
      }
      // After the inserts: a batch may void an invoice it also carries.
      for (const v of effects.voids ?? []) this.statements.voidInvoice.run(v.voidedAt, v.invoiceCode, v.invoiceNumber);
      if (effects.confirmed) this.statements.setConfirmed.run(effects.confirmed.seq, effects.confirmed.deviceSerial, effects.confirmed.seq);
      this.statements.insertReceipt.run(batchDigest, receipt.receiptId, receipt.receiptText, Buffer.from(receipt.signature));
    })();
  }

  revoke(serial: string, revokedAt: number): void {
    this.statements.revoke.run(serial, revokedAt);
  }

  revoked(): { serial: string; revokedAt: number }[] {
    return (this.statements.listRevoked.all() as { serial: string; revoked_at: number }[]).map((r) => ({ serial: r.serial, revokedAt: r.revoked_at }));
  }
}
