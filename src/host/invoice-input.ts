/**
 * The JSON invoice input of `ukeysim issuer issue` (docs/invoice-input.md), validated
 * strictly: unknown keys, wrong types, non-integer money, or totals that overflow are
 * BAD_INVOICE_INPUT errors naming the field. Money is integer fen; quantities are integer
 * thousandths of a unit; tax rates are per mille.
 */
import { taxFen, MAX_INVOICE_LINES, MAX_TEXT_BYTES, type InvoiceLine } from "../tax/index.ts";
import { HostError } from "./errors.ts";

export interface InvoiceInput {
  typeCode: string;
  buyerName: string;
  buyerTaxId: string;
  remark: string;
  lines: InvoiceLine[];
}

const TOP_KEYS = ["typeCode", "buyerName", "buyerTaxId", "remark", "lines"] as const;
const LINE_KEYS = ["name", "unit", "quantityMilli", "unitPriceFen", "taxRatePermille", "amountFen", "taxFen"] as const;
const MAX_LINE_FEN = 1_000_000_000_000; // 100 亿元: beyond any real line, far below 2^53
const MAX_QUANTITY_MILLI = 1_000_000_000_000;

function bad(path: string, message: string): HostError {
  return new HostError("BAD_INVOICE_INPUT", `${path}: ${message}`, { path });
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(path, "must be a JSON object");
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, keys: readonly string[], path: string): void {
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (extra.length) throw bad(path, `unknown field(s) ${extra.join(", ")} (allowed: ${keys.join(", ")})`);
}

function text(o: Record<string, unknown>, key: string, path: string, opts: { required?: boolean; pattern?: RegExp; hint?: string } = {}): string {
  const v = o[key];
  if (v === undefined && !opts.required) return "";
  if (typeof v !== "string") throw bad(`${path}.${key}`, "must be a string");
  if (Buffer.byteLength(v, "utf8") > MAX_TEXT_BYTES) throw bad(`${path}.${key}`, `at most ${MAX_TEXT_BYTES} bytes of UTF-8`);
  if (opts.required && v.trim() === "") throw bad(`${path}.${key}`, "must not be empty");
  if (opts.pattern && !opts.pattern.test(v)) throw bad(`${path}.${key}`, opts.hint ?? `must match ${opts.pattern.source}`);
  return v;
}

function int(o: Record<string, unknown>, key: string, path: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw bad(`${path}.${key}`, `must be an integer in [${min}, ${max}] (money is integer fen)`);
  return v;
}

/** amount = quantity x unit price, rounded half up to the fen (integer arithmetic). */
export function lineAmountFen(quantityMilli: number, unitPriceFen: number): number {
  return Number((BigInt(quantityMilli) * BigInt(unitPriceFen) + 500n) / 1000n);
}

function line(v: unknown, path: string): InvoiceLine {
  const o = obj(v, path);
  only(o, LINE_KEYS, path);
  const quantityMilli = int(o, "quantityMilli", path, 1, MAX_QUANTITY_MILLI);
  const unitPriceFen = int(o, "unitPriceFen", path, 0, MAX_LINE_FEN);
  const taxRatePermille = int(o, "taxRatePermille", path, 0, 1000);
  const amountFen = lineAmountFen(quantityMilli, unitPriceFen);
  if (amountFen > MAX_LINE_FEN) throw bad(path, `line amount ${amountFen} fen is over ${MAX_LINE_FEN}`);
  const tax = taxFen(amountFen, taxRatePermille);
  if (o.amountFen !== undefined && o.amountFen !== amountFen) throw bad(`${path}.amountFen`, `is ${String(o.amountFen)} but quantity x price gives ${amountFen}`);
  if (o.taxFen !== undefined && o.taxFen !== tax) throw bad(`${path}.taxFen`, `is ${String(o.taxFen)} but the rate gives ${tax}`);
  return { name: text(o, "name", path, { required: true }), unit: text(o, "unit", path), quantityMilli, unitPriceFen, amountFen, taxRatePermille, taxFen: tax };
}

/** Parse and validate an invoice input (already JSON-parsed). */
export function parseInvoiceInput(v: unknown): InvoiceInput {
  const o = obj(v, "invoice");
  only(o, TOP_KEYS, "invoice");
  const lines = o.lines;
  if (!Array.isArray(lines) || lines.length < 1 || lines.length > MAX_INVOICE_LINES) throw bad("invoice.lines", `must be an array of 1-${MAX_INVOICE_LINES} lines`);
  return {
    typeCode: text(o, "typeCode", "invoice", { required: true, pattern: /^[\x21-\x7e]{5}$/, hint: "must be the 5-character invoice type code, e.g. 02601" }),
    buyerName: text(o, "buyerName", "invoice", { required: true }),
    buyerTaxId: text(o, "buyerTaxId", "invoice", { pattern: /^([0-9A-Z]{15,20})?$/, hint: "must be 15-20 digits or capital letters, or empty" }),
    remark: text(o, "remark", "invoice"),
    lines: lines.map((l, i) => line(l, `invoice.lines[${i}]`)),
  };
}

/** Parse invoice input from JSON text. */
export function parseInvoiceJson(json: string): InvoiceInput {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (error) {
    throw bad("invoice", `not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseInvoiceInput(v);
}
