/**
 * Money is integer fen (1 yuan = 100 fen). No floating point anywhere: parsing and
 * formatting work on the decimal text.
 */
export const FEN_PER_YUAN = 100;
/** Largest amount a field may hold: 2^53 - 1 fen (far above any invoice). */
export const MAX_FEN = Number.MAX_SAFE_INTEGER;

export type Fen = number;

export function isFen(v: unknown): v is Fen {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

export function assertFen(v: number, what = "amount"): Fen {
  if (!isFen(v)) throw new RangeError(`${what} must be a non-negative integer number of fen, got ${v}`);
  return v;
}

/** "1234.56" -> 123456. Accepts at most two decimals; rejects signs, exponents, spaces. */
export function parseYuan(text: string): Fen {
  const m = /^(\d{1,15})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) throw new RangeError(`not an amount in yuan with at most 2 decimals: "${text}"`);
  const fen = Number(m[1]) * FEN_PER_YUAN + Number((m[2] ?? "").padEnd(2, "0"));
  return assertFen(fen);
}

/** 123456 -> "1234.56". */
export function formatYuan(fen: Fen): string {
  assertFen(fen);
  const s = String(fen).padStart(3, "0");
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** Sum of fen amounts; throws if the total leaves the safe-integer range. */
export function sumFen(values: readonly Fen[]): Fen {
  let t = 0;
  for (const v of values) t += assertFen(v);
  return assertFen(t, "sum");
}

/** Tax on an amount at a rate in per-mille, rounded half up: taxFen(10000, 130) = 1300. */
export function taxFen(amount: Fen, ratePermille: number): Fen {
  assertFen(amount);
  if (!Number.isInteger(ratePermille) || ratePermille < 0 || ratePermille > 1000) throw new RangeError(`tax rate per mille must be 0..1000, got ${ratePermille}`);
  return Number((BigInt(amount) * BigInt(ratePermille) + 500n) / 1000n);
}
