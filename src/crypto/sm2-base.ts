/**
 * k·G for SM2 (signing, key derivation) on sm-crypto-v2's own point arithmetic: its
 * projective add, double and negate, and its conversion to affine coordinates. What is
 * ours is the table and the order of additions, plus one modular inversion per result:
 *
 * - A signed fixed-base comb: the scalar is cut into WINDOW_BITS-bit digits d_i in
 *   [-2^(W-1), 2^(W-1)] and k·G = sum d_i · 2^(W·i) · G, one table lookup and one point
 *   addition per window, no doublings. sm-crypto-v2's `multiply` does the same walk but
 *   also adds a decoy point, negates every entry and normalizes two points; ours adds
 *   only what the scalar needs. Not constant-time: a simulator has no side channel to
 *   guard (a real card would keep the decoy additions).
 * - The affine x needs Z^-1 mod p once per multiplication; Lehmer's extended GCD (leading
 *   digits in doubles, one multi-precision step per ~24 bits) is ~4x faster than the plain
 *   BigInt Euclid, and sm-crypto-v2's toAffine re-checks Z·Z^-1 = 1 on every use.
 *
 * The table is a one-time cost per process (built on first use, as a card would compute
 * or burn it in once): TABLE_WINDOWS rows of 2^(W-1) points.
 */
import { sm2 as smV2 } from "sm-crypto-v2";

type Point = ReturnType<typeof smV2.precomputePublicKey>;

/** SM2's field prime p (GB/T 32918.5). */
export const SM2_FIELD_P = BigInt("0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF");
const GENERATOR_HEX = "04" +
  "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7" +
  "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";

/**
 * 12-bit digits are exactly 3 hex digits of the scalar, so digits come straight from its
 * hex text. 22 windows (21 additions) against 25 for sm-crypto-v2's 11-bit table; the
 * table is 22 x 2048 points (~9 MB, ~0.35 s once).
 */
const WINDOW_BITS = 12;
const WINDOW_HEX = WINDOW_BITS / 4;
const SCALAR_HEX = 64;
const TABLE_WINDOWS = Math.ceil(SCALAR_HEX / WINDOW_HEX);
const HALF_WINDOW = 1 << (WINDOW_BITS - 1);
const FULL_WINDOW = 1 << WINDOW_BITS;
/** Largest scalar the comb takes: its top digit plus a carry must stay a positive digit. */
const MAX_SCALAR = (1n << 256n) - 1n;

let table: Point[][] | undefined;

/** Row i holds j · 2^(W·i) · G for j = 1 .. 2^(W-1). */
function buildTable(): Point[][] {
  const rows: Point[][] = [];
  let base = smV2.precomputePublicKey(GENERATOR_HEX, 1);
  for (let i = 0; i < TABLE_WINDOWS; i++) {
    const row: Point[] = [base];
    for (let j = 1; j < HALF_WINDOW; j++) row.push((row[j - 1] as Point).add(base));
    rows.push(row);
    base = (row[HALF_WINDOW - 1] as Point).double(); // 2^(W-1) · base · 2 = 2^W · base
  }
  return rows;
}

/** k·G in projective coordinates, for 1 <= k < 2^256 (callers pass k mod n, never 0). */
function combMultiply(k: bigint): Point {
  if (k < 1n || k > MAX_SCALAR) throw new RangeError("fixed-base scalar out of range");
  table ??= buildTable();
  const hex = k.toString(16).padStart(SCALAR_HEX, "0");
  let acc: Point | undefined;
  let carry = 0;
  for (let i = 0; i < TABLE_WINDOWS; i++) {
    const end = SCALAR_HEX - WINDOW_HEX * i;
    let digit = parseInt(hex.slice(Math.max(0, end - WINDOW_HEX), end), 16) + carry;
    carry = digit > HALF_WINDOW ? 1 : 0;
    digit -= carry * FULL_WINDOW;
    if (digit === 0) continue;
    const entry = (table[i] as Point[])[Math.abs(digit) - 1] as Point;
    const term = digit < 0 ? entry.negate() : entry;
    acc = acc === undefined ? term : acc.add(term);
  }
  // 64 hex digits = 21 full windows + a 1-hex top window (< 16, so carry-in keeps it positive).
  if (carry !== 0 || acc === undefined) throw new Error("fixed-base comb left a carry or no point");
  return acc;
}

/** Affine (x, y) of k·G. */
export function fixedBaseMultiply(k: bigint): { x: bigint; y: bigint } {
  const p = combMultiply(k);
  return p.toAffine(invertMod(p.Z, SM2_FIELD_P));
}

/** Leading bits compared in doubles: every intermediate stays below 2^53, so exact. */
const LEAD_BITS = 48;
const EXACT_LIMIT = 1n << BigInt(LEAD_BITS + 2);

/**
 * a^-1 mod m for odd m and a not divisible by m, by Lehmer's extended Euclid (Knuth,
 * TAOCP 4.5.2, Algorithm L): each round runs Euclid on the leading bits of (u, v) in
 * doubles while both bounds on the quotient agree, then applies the collected 2x2 matrix
 * to the full numbers once. Invariant: u ≡ x·a and v ≡ y·a (mod m), u >= v >= 0.
 */
export function invertMod(a: bigint, m: bigint): bigint {
  let u = m;
  let v = ((a % m) + m) % m;
  let x = 0n;
  let y = 1n;
  while (u >= EXACT_LIMIT && v !== 0n) {
    const shift = BigInt(Math.max(0, Math.floor(Math.log2(Number(u))) + 1 - LEAD_BITS));
    const [A, B, C, D] = leadingQuotients(Number(u >> shift), Number(v >> shift));
    if (B === 0) {
      // The leading bits decided no quotient: one full-precision Euclid step.
      const q = u / v;
      const r = u - q * v;
      const z = x - q * y;
      u = v;
      v = r;
      x = y;
      y = z;
    } else {
      const a1 = BigInt(A), b1 = BigInt(B), c1 = BigInt(C), d1 = BigInt(D);
      const u1 = a1 * u + b1 * v;
      const x1 = a1 * x + b1 * y;
      v = c1 * u + d1 * v;
      y = c1 * x + d1 * y;
      u = u1;
      x = x1;
    }
  }
  // Both below 2^50 now (or v = 0): finish exactly in doubles, carrying the matrix.
  let uh = Number(u);
  let vh = Number(v);
  let A = 1, B = 0, C = 0, D = 1;
  while (vh !== 0) {
    const q = Math.floor(uh / vh);
    const r = uh - q * vh;
    const c = A - q * C;
    const d = B - q * D;
    uh = vh;
    vh = r;
    A = C;
    B = D;
    C = c;
    D = d;
  }
  if (uh !== 1) throw new RangeError("value not invertible");
  const inverse = (BigInt(A) * x + BigInt(B) * y) % m;
  return inverse < 0n ? inverse + m : inverse;
}

/**
 * Knuth's inner loop on leading digits uh >= vh: the matrix [A B; C D] of the quotients
 * that the digits alone determine (both (uh+A)/(vh+C) and (uh+B)/(vh+D) floor alike).
 */
function leadingQuotients(uh: number, vh: number): [number, number, number, number] {
  let A = 1, B = 0, C = 0, D = 1;
  while (vh + C !== 0 && vh + D !== 0) {
    const q = Math.floor((uh + A) / (vh + C));
    if (q !== Math.floor((uh + B) / (vh + D))) break;
    const c = A - q * C;
    const d = B - q * D;
    const r = uh - q * vh;
    A = C;
    B = D;
    C = c;
    D = d;
    uh = vh;
    vh = r;
  }
  return [A, B, C, D];
}
