/**
 * Strict readers for request bodies: each names the field it refuses, as a 400 BAD_REQUEST
 * BureauError, and none changes anything.
 */
import { fromHex } from "../sim/index.ts";
import { CHALLENGE_BYTES } from "../tax/index.ts";
import { bad } from "./errors.ts";

export function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("BAD_REQUEST", `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

export function onlyKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length) throw bad("BAD_REQUEST", `${what}: unknown field(s) ${extra.join(", ")}`);
}

export function text(o: Record<string, unknown>, key: string, pattern: RegExp, what: string): string {
  const value = o[key];
  if (typeof value !== "string" || !pattern.test(value)) throw bad("BAD_REQUEST", `${what}.${key} is missing or malformed (expected ${pattern.source})`);
  return value;
}

export function integer(o: Record<string, unknown>, key: string, min: number, max: number, what: string): number {
  const value = o[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) throw bad("BAD_REQUEST", `${what}.${key} must be an integer in [${min}, ${max}]`);
  return value;
}

export function array(o: Record<string, unknown>, key: string, min: number, max: number, what: string): unknown[] {
  const value = o[key];
  if (!Array.isArray(value) || value.length < min || value.length > max) throw bad("BAD_REQUEST", `${what}.${key} must be an array of ${min}-${max} items`);
  return value;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function base64(value: unknown, what: string, maxBytes: number): Uint8Array {
  if (typeof value !== "string" || value.length === 0 || value.length > Math.ceil(maxBytes / 3) * 4 || !BASE64.test(value)) {
    throw bad("BAD_REQUEST", `${what} must be base64 of at most ${maxBytes} bytes`);
  }
  const bytes = Buffer.from(value, "base64");
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const TAXPAYER_ID = /^[0-9A-Z]{15,20}$/;
export const DEVICE_SERIAL = /^[0-9A-Za-z-]{1,32}$/;
/** 发票代码: 12 digits, as the card's purchase records and the invoice encoding hold it. */
export const INVOICE_CODE = /^\d{12}$/;

export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function lengthPrefixed(parts: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, p.length);
    out.push(length, p);
  }
  return out;
}

export function parseChallenge(value: unknown): Uint8Array {
  if (typeof value !== "string" || !new RegExp(`^[0-9a-fA-F]{${CHALLENGE_BYTES * 2}}$`).test(value)) {
    throw bad("BAD_REQUEST", `challenge must be ${CHALLENGE_BYTES * 2} hex digits (the card's GET CHALLENGE answer)`);
  }
  return fromHex(value);
}
