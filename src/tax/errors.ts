/**
 * The 27 error codes of the tax-control interface, TYUKEY_BASE + n (n = 1..27), each with
 * the status word the card answers with. The paper fixes +17 (bad certificate), +18
 * (un-uploaded data present) and +19 (requested data does not exist); the rest are ours.
 *
 * Device-side errors map one-to-one to a status word; +1 and +2 are host-side (nothing or
 * garbage came back), so they have no status word. Tax-specific errors use 94nn.
 */
import { hexSw, STATUS_WORDS, SW, SW_TAX_BASE } from "./status-words.ts";

export const TYUKEY_BASE = 0x0a00_0000;
export const ERROR_COUNT = 27;

export interface TaxErrorInfo {
  n: number;
  code: number;
  name: string;
  /** The status word the card answers with; null for host-side errors. */
  sw: number | null;
  meaning: string;
}

const tax = (n: number) => SW_TAX_BASE + n;

/** [n, C name, status word, meaning]. Order is the numbering. */
const TABLE: ReadonlyArray<readonly [number, string, number | null, string]> = [
  [1, "TYUKEY_DEVICE_NOT_FOUND", null, "no device answers (absent, mute or unpowered)"],
  [2, "TYUKEY_DEVICE_COMM_ERROR", null, "communication error: malformed or missing response"],
  [3, "TYUKEY_DEVICE_PARAM_ERROR", SW.WRONG_DATA, "incorrect data field (malformed input)"],
  [4, "TYUKEY_DEVICE_WRONG_LENGTH", SW.WRONG_LENGTH, "wrong length"],
  [5, "TYUKEY_DEVICE_WRONG_P1P2", SW.WRONG_P1P2, "incorrect parameters P1 P2"],
  [6, "TYUKEY_DEVICE_NOT_SUPPORTED", SW.INS_NOT_SUPPORTED, "instruction not supported"],
  [7, "TYUKEY_DEVICE_CLA_ERROR", SW.CLA_NOT_SUPPORTED, "class not supported"],
  [8, "TYUKEY_DEVICE_NEED_AUTH", SW.SECURITY_NOT_SATISFIED, "security status not satisfied (PIN or bureau authentication)"],
  [9, "TYUKEY_DEVICE_PIN_ERROR", SW.PIN_WRONG, "PIN incorrect (63Cx: x tries left)"],
  [10, "TYUKEY_DEVICE_PIN_LOCKED", SW.AUTH_METHOD_BLOCKED, "PIN blocked"],
  [11, "TYUKEY_DEVICE_STATE_ERROR", SW.CONDITIONS_NOT_SATISFIED, "conditions of use not satisfied (not personalized, wrong life-cycle state)"],
  [12, "TYUKEY_DEVICE_MAC_ERROR", SW.SM_DATA_INCORRECT, "secure message MAC or cryptogram wrong"],
  [13, "TYUKEY_DEVICE_REPLAY", tax(13), "secure message replayed (counter not increasing)"],
  [14, "TYUKEY_DEVICE_STORAGE_FULL", SW.NOT_ENOUGH_MEMORY, "secure storage full (nothing reclaimable)"],
  [15, "TYUKEY_DEVICE_CLOCK_INVALID", tax(15), "secure clock not set, battery exhausted or host time rolled back"],
  [16, "TYUKEY_DEVICE_KEY_EXPIRED", tax(16), "signing key used 1,000,000 times: renew the key pair"],
  [17, "TYUKEY_DEVICE_BAD_CERT", tax(17), "identity certificate missing, expired or revoked"],
  [18, "TYUKEY_DEVICE_HAVE_NOTRANCE_DATA", tax(18), "un-uploaded data present"],
  [19, "TYUKEY_DEVICE_DATA_NOT_EXIST", SW.RECORD_NOT_FOUND, "requested data does not exist"],
  [20, "TYUKEY_DEVICE_TAXPAYER_MISMATCH", tax(20), "taxpayer ID, login account or machine number does not match"],
  [21, "TYUKEY_DEVICE_NO_STOCK", tax(21), "invoice type not purchased, disabled, or stock used up"],
  [22, "TYUKEY_DEVICE_OFFLINE_EXPIRED", tax(22), "offline issuing not allowed: validity period, online/offline flag or valid days exceeded"],
  [23, "TYUKEY_DEVICE_OFFLINE_COUNT", tax(23), "offline invoice count limit reached"],
  [24, "TYUKEY_DEVICE_OFFLINE_RATIO", tax(24), "offline issuing ratio exceeded"],
  [25, "TYUKEY_DEVICE_AMOUNT_LIMIT", tax(25), "invoice total over the single-invoice limit"],
  [26, "TYUKEY_DEVICE_OFFLINE_AMOUNT", tax(26), "cumulative offline amount limit exceeded"],
  [27, "TYUKEY_DEVICE_INVOICE_STATE", tax(27), "invoice state forbids it (already voided or credited, red amount over the remainder)"],
];

export const TAX_ERRORS: readonly TaxErrorInfo[] = TABLE.map(([n, name, sw, meaning]) => ({ n, code: TYUKEY_BASE + n, name, sw, meaning }));

/** Error names as constants: TaxError.TYUKEY_DEVICE_BAD_CERT === TYUKEY_BASE + 17. */
export const TaxErrorCode = Object.fromEntries(TAX_ERRORS.map((e) => [e.name, e.code])) as Readonly<Record<string, number>>;

export const E = {
  NOT_FOUND: TYUKEY_BASE + 1,
  COMM: TYUKEY_BASE + 2,
  PARAM: TYUKEY_BASE + 3,
  LENGTH: TYUKEY_BASE + 4,
  P1P2: TYUKEY_BASE + 5,
  INS: TYUKEY_BASE + 6,
  CLA: TYUKEY_BASE + 7,
  NEED_AUTH: TYUKEY_BASE + 8,
  PIN_ERROR: TYUKEY_BASE + 9,
  PIN_LOCKED: TYUKEY_BASE + 10,
  STATE: TYUKEY_BASE + 11,
  MAC: TYUKEY_BASE + 12,
  REPLAY: TYUKEY_BASE + 13,
  STORAGE_FULL: TYUKEY_BASE + 14,
  CLOCK_INVALID: TYUKEY_BASE + 15,
  KEY_EXPIRED: TYUKEY_BASE + 16,
  BAD_CERT: TYUKEY_BASE + 17,
  HAVE_NOTRANCE_DATA: TYUKEY_BASE + 18,
  DATA_NOT_EXIST: TYUKEY_BASE + 19,
  TAXPAYER_MISMATCH: TYUKEY_BASE + 20,
  NO_STOCK: TYUKEY_BASE + 21,
  OFFLINE_EXPIRED: TYUKEY_BASE + 22,
  OFFLINE_COUNT: TYUKEY_BASE + 23,
  OFFLINE_RATIO: TYUKEY_BASE + 24,
  AMOUNT_LIMIT: TYUKEY_BASE + 25,
  OFFLINE_AMOUNT: TYUKEY_BASE + 26,
  INVOICE_STATE: TYUKEY_BASE + 27,
} as const;

const byCode = new Map(TAX_ERRORS.map((e) => [e.code, e]));

export function taxErrorInfo(code: number): TaxErrorInfo | undefined {
  return byCode.get(code);
}

/** The status word the card answers with for an error; `tries` fills 63Cx. */
export function swForError(code: number, tries = 0): number {
  const info = byCode.get(code);
  if (!info || info.sw === null) throw new RangeError(`error ${code} has no status word`);
  return info.sw === SW.PIN_WRONG ? SW.PIN_WRONG | (tries & 0x0f) : info.sw;
}

/**
 * The error a status word means (0 for 9000 and 61xx). Words outside the table map to
 * the nearest error: unknown 6Axx to PARAM, everything else to COMM.
 */
export function errorForSw(sw: number): number {
  if (sw === SW.OK || (sw & 0xff00) === SW.MORE_DATA) return 0;
  if ((sw & 0xfff0) === SW.PIN_WRONG) return E.PIN_ERROR;
  for (const e of TAX_ERRORS) if (e.sw !== null && e.sw === sw) return e.code;
  if (sw === SW.FILE_NOT_FOUND) return E.DATA_NOT_EXIST;
  if (sw === SW.MEMORY_FAILURE) return E.STORAGE_FULL;
  if ((sw & 0xff00) === 0x6a00) return E.PARAM;
  return E.COMM;
}

/** Human-readable meaning of a status word, for consoles and reports. */
export function describeSw(sw: number): string {
  if ((sw & 0xff00) === SW_TAX_BASE) {
    const info = TAX_ERRORS.find((e) => e.sw === sw);
    if (info) return `${info.name}: ${info.meaning}`;
  }
  if ((sw & 0xfff0) === SW.PIN_WRONG) return `PIN verification failed, ${sw & 0x0f} tries left`;
  if ((sw & 0xff00) === SW.MORE_DATA) return `${sw & 0xff || 256} more bytes: send GET RESPONSE`;
  if ((sw & 0xff00) === SW.WRONG_LE) return `wrong Le: exact length is ${sw & 0xff}`;
  const info = STATUS_WORDS.find((s) => (sw & s.mask) === s.sw);
  return info ? info.meaning : `unknown status word ${hexSw(sw)}`;
}

/** An error carrying a TYUKEY code: thrown by the COS internally and by the issuer helpers. */
export class TaxError extends Error {
  constructor(readonly code: number, message?: string, readonly tries = 0) {
    super(message ?? taxErrorInfo(code)?.meaning ?? `error ${code}`);
    this.name = "TaxError";
  }
  get info(): TaxErrorInfo | undefined {
    return taxErrorInfo(this.code);
  }
}
