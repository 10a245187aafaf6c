/**
 * The issuance profile (fixtures/profile-*.json): taxpayer, invoice types, stock and
 * limits the bureau loads at personalization, plus the keys. Parsed strictly: a bad
 * profile is a clear error, never a half-personalized card.
 */
import { DEFAULT_OFFLINE_VALID_DAYS, encodeLayout, INVOICE_TYPE_LAYOUT, LIMITS_LAYOUT, PURCHASE_LAYOUT, TAXPAYER_LAYOUT, type InvoiceTypeEntry, type LayoutValues, type OfflineLimits, type PurchaseRecord, type TaxpayerInfo } from "./layouts.ts";
import { SM4_STANDIN_TAX_CODE, taxCodeAlgorithm } from "./tax-code.ts";

export interface IssuanceProfile {
  bureauMasterKey: Uint8Array;
  taxKey: Uint8Array;
  taxCodeAlgorithm: string;
  userPin: string;
  soPin: string;
  taxpayer: TaxpayerInfo;
  invoiceTypes: InvoiceTypeEntry[];
  purchases: PurchaseRecord[];
  limits: OfflineLimits;
}

export class ProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProfileError";
  }
}

function hex16(v: unknown, what: string): Uint8Array {
  if (typeof v !== "string" || !/^[0-9a-fA-F]{32}$/.test(v)) throw new ProfileError(`${what} must be 32 hex digits`);
  return new Uint8Array(Buffer.from(v, "hex"));
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new ProfileError(`${what} must be a string`);
  return v;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ProfileError(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function checkRecord<T>(layout: typeof TAXPAYER_LAYOUT, v: unknown, what: string): T {
  const o = obj(v, what);
  try {
    encodeLayout(layout, o as LayoutValues);
  } catch (e) {
    throw new ProfileError(`${what}: ${(e as Error).message}`);
  }
  return o as T;
}

export function parseProfile(json: string): IssuanceProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new ProfileError(`profile is not JSON: ${(e as Error).message}`);
  }
  const o = obj(raw, "profile");
  const algorithm = o.taxCodeAlgorithm === undefined ? SM4_STANDIN_TAX_CODE.id : str(o.taxCodeAlgorithm, "taxCodeAlgorithm");
  try {
    taxCodeAlgorithm(algorithm);
  } catch (e) {
    throw new ProfileError((e as Error).message);
  }
  const pin = (v: unknown, what: string) => {
    const s = str(v, what);
    if (!/^[\x21-\x7e]{4,16}$/.test(s)) throw new ProfileError(`${what} must be 4..16 printable ASCII characters`);
    return s;
  };
  const list = (v: unknown, what: string, max: number) => {
    if (!Array.isArray(v) || v.length > max) throw new ProfileError(`${what} must be an array of at most ${max}`);
    return v;
  };
  const limits = { validDays: DEFAULT_OFFLINE_VALID_DAYS, ...obj(o.limits, "limits") };
  return {
    bureauMasterKey: hex16(o.bureauMasterKey, "bureauMasterKey"),
    taxKey: hex16(o.taxKey, "taxKey"),
    taxCodeAlgorithm: algorithm,
    userPin: pin(o.userPin, "userPin"),
    soPin: pin(o.soPin, "soPin"),
    taxpayer: checkRecord<TaxpayerInfo>(TAXPAYER_LAYOUT, o.taxpayer, "taxpayer"),
    invoiceTypes: list(o.invoiceTypes, "invoiceTypes", INVOICE_TYPE_LAYOUT.records).map((t, i) => checkRecord<InvoiceTypeEntry>(INVOICE_TYPE_LAYOUT, t, `invoiceTypes[${i}]`)),
    purchases: list(o.purchases, "purchases", PURCHASE_LAYOUT.records).map((p, i) => checkRecord<PurchaseRecord>(PURCHASE_LAYOUT, p, `purchases[${i}]`)),
    limits: checkRecord<OfflineLimits>(LIMITS_LAYOUT, limits, "limits"),
  };
}
