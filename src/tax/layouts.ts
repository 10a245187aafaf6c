/**
 * The fixed-length data areas of the tax-control application, in the manner of the
 * paper's storage tables: every field has an offset, a length, an encoding and a meaning.
 * The COS stores them (encrypted) in flash and returns them from the read functions; the
 * host and the bureau decode them with the same tables. docs/storage-layout.md is
 * checked against these tables by a test.
 *
 * Encodings: "ascii" right-padded with spaces; "utf8" right-padded with 0x00; "date"
 * 8 ASCII digits YYYYMMDD; u8/u16/u32/u64 unsigned big-endian; "reserved" zero bytes.
 */
export type FieldEncoding = "ascii" | "utf8" | "date" | "u8" | "u16" | "u32" | "u64" | "reserved";

export interface LayoutField {
  offset: number;
  name: string;
  length: number;
  encoding: FieldEncoding;
  meaning: string;
}

export interface Layout {
  id: string;
  title: string;
  /** Where it lives on the device. */
  location: string;
  recordLength: number;
  records: number;
  read: string;
  write: string;
  fields: readonly LayoutField[];
}

type F = readonly [name: string, length: number, encoding: FieldEncoding, meaning: string];

function layout(meta: Omit<Layout, "fields" | "recordLength">, fields: readonly F[]): Layout {
  let offset = 0;
  const out: LayoutField[] = [];
  for (const [name, length, encoding, meaning] of fields) {
    out.push({ offset, name, length, encoding, meaning });
    offset += length;
  }
  return { ...meta, recordLength: offset, fields: out };
}

export const TAXPAYER_LAYOUT = layout(
  { id: "taxpayer", title: "纳税人登记信息 taxpayer registration", location: "secure flash, critical record (two copies), encrypted", records: 1, read: "user PIN (UKEY_GetNsrjxxqy)", write: "bureau authentication + secure messaging (ciphertext + MAC)" },
  [
    ["taxpayerId", 20, "ascii", "纳税人识别号 taxpayer identification number"],
    ["taxpayerName", 100, "utf8", "纳税人名称 taxpayer name"],
    ["loginAccount", 20, "ascii", "登录账号 login account of the invoicing system"],
    ["machineNumber", 12, "ascii", "机器编号 machine number of the invoicing terminal"],
    ["taxAuthorityCode", 11, "ascii", "主管税务机关代码 tax authority code"],
    ["industryCode", 4, "ascii", "行业代码 industry code"],
    ["registeredOn", 8, "date", "登记日期 registration date"],
    ["certNotAfter", 4, "u32", "identity certificate valid until (Unix seconds)"],
    ["certStatus", 1, "u8", "identity certificate status: 0 valid, 1 revoked"],
    ["reserved", 20, "reserved", "zero"],
  ],
);

export const INVOICE_TYPE_LAYOUT = layout(
  { id: "invoice-type", title: "发票票种信息 invoice-type table", location: "secure flash (the paper's EEPROM), critical record (two copies), encrypted", records: 10, read: "CA user PIN (UKEY_GetPzxx)", write: "CA user PIN + ciphertext + MAC (secure messaging under bureau authentication)" },
  [
    ["typeCode", 5, "ascii", "发票种类代码 invoice type code"],
    ["industryCode", 4, "ascii", "行业代码 industry code"],
    ["singleLimitFen", 8, "u64", "单张限额 single-invoice limit, fen, tax included"],
    ["validFrom", 8, "date", "valid from"],
    ["validTo", 8, "date", "valid to"],
    ["status", 1, "u8", "0 empty slot, 1 enabled, 2 suspended"],
    ["maxLines", 1, "u8", "maximum detail lines per invoice"],
    ["reserved", 2, "reserved", "zero"],
  ],
);

export const PURCHASE_LAYOUT = layout(
  { id: "purchase", title: "发票领购信息 purchase (stock) records", location: "secure flash, critical record (two copies), encrypted", records: 10, read: "user PIN (UKEY_GetLgxx)", write: "bureau secure messaging (UKEY_SyncLgxx); the COS advances nextNumber on issue" },
  [
    ["typeCode", 5, "ascii", "发票种类代码 invoice type code"],
    ["invoiceCode", 12, "ascii", "发票代码 invoice code"],
    ["startNumber", 4, "u32", "发票起号 first invoice number of the batch"],
    ["count", 4, "u32", "份数 invoices in the batch"],
    ["nextNumber", 4, "u32", "next number to issue (startNumber + count when used up)"],
    ["purchasedOn", 8, "date", "领购日期 purchase date"],
    ["status", 1, "u8", "0 empty slot, 1 active, 2 used up, 3 withdrawn"],
    ["reserved", 10, "reserved", "zero"],
  ],
);

export const LIMITS_LAYOUT = layout(
  { id: "limits", title: "离线开具限制 offline limits", location: "secure flash, critical record (two copies), encrypted", records: 1, read: "user PIN (UKEY_GetLxxx, first 40 bytes)", write: "bureau secure messaging (UKEY_SetLxxz)" },
  [
    ["offlineAllowed", 1, "u8", "在线离线标志 1 = offline issuing permitted"],
    ["validDays", 2, "u16", "有效天数 offline window in days since the last bureau contact (default 3)"],
    ["validUntil", 4, "u32", "离线开票有效期限 offline authorization valid until (Unix seconds)"],
    ["maxOfflineCount", 4, "u32", "离线开票数量 maximum un-uploaded invoices"],
    ["maxOfflineAmountFen", 8, "u64", "cumulative offline amount limit, fen"],
    ["maxOfflineRatioPermille", 2, "u16", "离线开具比例 offline invoices per 1000 of the stock batch"],
    ["singleLimitFen", 8, "u64", "single-invoice limit, fen, tax included"],
    ["reserved", 11, "reserved", "zero"],
  ],
);

export const OFFLINE_STATUS_LAYOUT = layout(
  { id: "offline-status", title: "离线状态 offline status (computed)", location: "computed by the COS from its state record; follows the limits in the UKEY_GetLxxx response", records: 1, read: "user PIN (UKEY_GetLxxx, bytes 40..71)", write: "none (the COS)" },
  [
    ["state", 1, "u8", "tax-control state: 0 factory, 1 personalized, 2 online, 3 offline window open, 4 upload pending, 5 locked"],
    ["lockReason", 1, "u8", "0 none, 1 time, 2 count, 3 amount, 4 ratio, 5 clock invalid, 6 key expired, 7 certificate"],
    ["lastOnlineAt", 4, "u32", "last bureau contact (Unix seconds, secure clock)"],
    ["windowEndsAt", 4, "u32", "offline window end (Unix seconds)"],
    ["pendingCount", 4, "u32", "un-uploaded records"],
    ["offlineCount", 4, "u32", "invoices issued since the last confirmed upload"],
    ["offlineAmountFen", 8, "u64", "cumulative amount issued since the last confirmed upload, fen"],
    ["issuedTotal", 4, "u32", "invoices issued since personalization"],
    ["reserved", 2, "reserved", "zero"],
  ],
);

export const DEVICE_INFO_LAYOUT = layout(
  { id: "device-info", title: "设备信息 device and health information", location: "computed by the COS", records: 1, read: "free (UKEY_GetSbxx)", write: "none" },
  [
    ["serialNumber", 16, "ascii", "device serial number"],
    ["cosVersion", 8, "ascii", "COS version"],
    ["lifeCycle", 1, "u8", "0 factory, 1 personalized"],
    ["signCount", 4, "u32", "signatures made with the current key pair"],
    ["signLimit", 4, "u32", "signatures allowed before renewal (1,000,000)"],
    ["userPinTries", 1, "u8", "user PIN tries left"],
    ["soPinTries", 1, "u8", "SO PIN tries left"],
    ["clockState", 1, "u8", "0 not set, 1 running, 2 battery exhausted, 3 rollback detected"],
    ["batteryDaysLeft", 2, "u16", "secure-clock battery days left"],
    ["storageFreeKiB", 4, "u32", "free secure storage, KiB"],
    ["storageUsedKiB", 4, "u32", "used secure storage, KiB"],
    ["invoicesStored", 4, "u32", "invoice records held"],
    ["reclaimedRecords", 4, "u32", "records reclaimed by rollover"],
    ["reserved", 10, "reserved", "zero"],
  ],
);

export const SECURE_TIME_LAYOUT = layout(
  { id: "secure-time", title: "安全时钟 secure time", location: "secure clock", records: 1, read: "free (UKEY_GetAqsz)", write: "bureau only, at issuance (SET CLOCK)" },
  [
    ["seconds", 4, "u32", "secure time, Unix seconds"],
    ["text", 14, "ascii", "the same as YYYYMMDDhhmmss in Beijing time (UTC+8)"],
    ["clockState", 1, "u8", "0 not set, 1 running, 2 battery exhausted, 3 rollback detected"],
    ["reserved", 1, "reserved", "zero"],
  ],
);

export const LAYOUTS: readonly Layout[] = [TAXPAYER_LAYOUT, INVOICE_TYPE_LAYOUT, PURCHASE_LAYOUT, LIMITS_LAYOUT, OFFLINE_STATUS_LAYOUT, DEVICE_INFO_LAYOUT, SECURE_TIME_LAYOUT];

export type LayoutValues = Record<string, string | number>;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Encode one record; unknown fields are errors, missing fields are zero/empty. */
export function encodeLayout(l: Layout, values: LayoutValues): Uint8Array {
  for (const k of Object.keys(values)) if (!l.fields.some((f) => f.name === k && f.encoding !== "reserved")) throw new RangeError(`${l.id}: unknown field "${k}"`);
  const out = new Uint8Array(l.recordLength);
  for (const f of l.fields) {
    const v = values[f.name];
    if (f.encoding === "reserved") continue;
    if (f.encoding === "ascii" || f.encoding === "utf8" || f.encoding === "date") {
      const s = v === undefined ? "" : String(v);
      if (f.encoding !== "utf8" && !/^[\x20-\x7e]*$/.test(s)) throw new RangeError(`${l.id}.${f.name}: ASCII only`);
      if (f.encoding === "date" && s !== "" && !/^\d{8}$/.test(s)) throw new RangeError(`${l.id}.${f.name}: date must be YYYYMMDD`);
      const b = enc.encode(s);
      if (b.length > f.length) throw new RangeError(`${l.id}.${f.name}: ${b.length} bytes, field holds ${f.length}`);
      out.fill(f.encoding === "utf8" ? 0 : 0x20, f.offset, f.offset + f.length);
      out.set(b, f.offset);
      continue;
    }
    const n = v === undefined ? 0 : Number(v);
    const max = f.encoding === "u64" ? Number.MAX_SAFE_INTEGER : 2 ** (8 * f.length) - 1;
    if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new RangeError(`${l.id}.${f.name}: ${v} is not 0..${max}`);
    let x = n;
    for (let i = f.length - 1; i >= 0; i--) {
      out[f.offset + i] = x % 256;
      x = Math.floor(x / 256);
    }
  }
  return out;
}

export function decodeLayout(l: Layout, b: Uint8Array): LayoutValues {
  if (b.length !== l.recordLength) throw new RangeError(`${l.id}: record is ${b.length} bytes, expected ${l.recordLength}`);
  const out: LayoutValues = {};
  for (const f of l.fields) {
    const s = b.subarray(f.offset, f.offset + f.length);
    if (f.encoding === "reserved") continue;
    if (f.encoding === "utf8") {
      let end = s.indexOf(0);
      if (end < 0) end = s.length;
      try {
        out[f.name] = dec.decode(s.subarray(0, end));
      } catch {
        throw new RangeError(`${l.id}.${f.name}: invalid UTF-8`);
      }
    } else if (f.encoding === "ascii" || f.encoding === "date") {
      const text = String.fromCharCode(...s).replace(/[ \0]+$/, "");
      if (!/^[\x20-\x7e]*$/.test(text)) throw new RangeError(`${l.id}.${f.name}: not ASCII`);
      out[f.name] = text;
    } else {
      let x = 0;
      for (const byte of s) x = x * 256 + byte;
      if (!Number.isSafeInteger(x)) throw new RangeError(`${l.id}.${f.name}: value beyond 2^53`);
      out[f.name] = x;
    }
  }
  return out;
}

// Typed views of the records the host, bureau and COS pass around.
export interface TaxpayerInfo {
  taxpayerId: string;
  taxpayerName: string;
  loginAccount: string;
  machineNumber: string;
  taxAuthorityCode: string;
  industryCode: string;
  registeredOn: string;
  certNotAfter: number;
  certStatus: number;
}

export interface InvoiceTypeEntry {
  typeCode: string;
  industryCode: string;
  singleLimitFen: number;
  validFrom: string;
  validTo: string;
  status: number;
  maxLines: number;
}

export interface PurchaseRecord {
  typeCode: string;
  invoiceCode: string;
  startNumber: number;
  count: number;
  nextNumber: number;
  purchasedOn: string;
  status: number;
}

export interface OfflineLimits {
  offlineAllowed: number;
  validDays: number;
  validUntil: number;
  maxOfflineCount: number;
  maxOfflineAmountFen: number;
  maxOfflineRatioPermille: number;
  singleLimitFen: number;
}

export interface OfflineStatus {
  state: number;
  lockReason: number;
  lastOnlineAt: number;
  windowEndsAt: number;
  pendingCount: number;
  offlineCount: number;
  offlineAmountFen: number;
  issuedTotal: number;
}

export interface DeviceInfo {
  serialNumber: string;
  cosVersion: string;
  lifeCycle: number;
  signCount: number;
  signLimit: number;
  userPinTries: number;
  soPinTries: number;
  clockState: number;
  batteryDaysLeft: number;
  storageFreeKiB: number;
  storageUsedKiB: number;
  invoicesStored: number;
  reclaimedRecords: number;
}

export interface SecureTime {
  seconds: number;
  text: string;
  clockState: number;
}

export const SlotStatus = { EMPTY: 0, ENABLED: 1, SUSPENDED: 2 } as const;
export const PurchaseStatus = { EMPTY: 0, ACTIVE: 1, USED_UP: 2, WITHDRAWN: 3 } as const;
export const DEFAULT_OFFLINE_VALID_DAYS = 3;

/** Encode a whole table (e.g. the 10 x 37 invoice-type table), empty slots zero. */
export function encodeTable(l: Layout, rows: readonly LayoutValues[]): Uint8Array {
  if (rows.length > l.records) throw new RangeError(`${l.id}: at most ${l.records} records`);
  const out = new Uint8Array(l.recordLength * l.records);
  for (let i = 0; i < l.records; i++) out.set(encodeLayout(l, rows[i] ?? {}), i * l.recordLength);
  return out;
}

export function decodeTable(l: Layout, b: Uint8Array): LayoutValues[] {
  if (b.length !== l.recordLength * l.records) throw new RangeError(`${l.id}: table is ${b.length} bytes, expected ${l.recordLength * l.records}`);
  const out: LayoutValues[] = [];
  for (let i = 0; i < l.records; i++) out.push(decodeLayout(l, b.subarray(i * l.recordLength, (i + 1) * l.recordLength)));
  return out;
}

/** Beijing-time text YYYYMMDDhhmmss of Unix seconds (UTC+8, no DST). */
export function beijingText(seconds: number): string {
  const d = new Date((seconds + 8 * 3600) * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

export function beijingDate(seconds: number): string {
  return beijingText(seconds).slice(0, 8);
}
