/**
 * k·G for SM2 (signing, key derivation) on sm-crypto-v2's own point arithmetic: its
 * projective add, double and negate, and its conversion to affine coordinates. What is
 * ours is the table and the order of additions, plus one modular inversion per result:
 *
 * - A fixed-base window method with signed digits: the scalar is cut into W-bit digits
 *   d_i in [-2^(W-1), 2^(W-1)] and k·G = sum d_i · 2^(W·i) · G, one table lookup and one
 *   point addition per window, no doublings. sm-crypto-v2's `multiply` does the same walk but
 *   also adds a decoy point, negates every entry and normalizes two points; ours adds
 *   only what the scalar needs. Not constant-time: a simulator has no side channel to
 *   guard (a real card would keep the decoy additions).
 * - The affine x needs Z^-1 mod p once per multiplication; Lehmer's extended GCD (leading
 *   digits in doubles, one multi-precision step per ~24 bits) takes ~7 us against ~23 us
 *   for the plain BigInt Euclid, and sm-crypto-v2's toAffine re-checks Z·Z^-1 = 1.
 *
 * The table is a one-time cost per process (built on first use, as a card would compute
 * or burn it in once): TABLE_WINDOWS rows of 2^(W-1) points with Z = 1.
 */
import { sm2 as smV2 } from "sm-crypto-v2";

type Point = ReturnType<typeof smV2.precomputePublicKey>;

/** SM2's field prime p (GB/T 32918.5). */
export const SM2_FIELD_P = BigInt("0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF");
const GENERATOR_HEX = "04" +
  "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7" +
  "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";

/**
 * Window width W: one bit more saves about one addition in twenty and doubles the table.
 * 12 bits: 22 windows (21 additions, against 25 for sm-crypto-v2's 11-bit table), a table
 * of 21 x 2048 + 16 points built in ~0.45 s once. Measured (sign alone, loaded box): 13
 * bits is ~5% faster but takes ~0.9 s to build, in every process that signs (tests too).
 */
const WINDOW_BITS = 12;
const SCALAR_BITS = 256;
/** One window more than the scalar needs: the signed recoding may carry out of the top. */
const TABLE_WINDOWS = Math.floor(SCALAR_BITS / WINDOW_BITS) + 1;
const HALF_WINDOW = 2 ** (WINDOW_BITS - 1);
const FULL_WINDOW = 2 ** WINDOW_BITS;
const DIGIT_MASK = FULL_WINDOW - 1;
/** Scalar bytes, big-endian, behind 3 zero bytes so a window read never leaves the array. */
const SCALAR_PAD = 3;

let table: Point[][] | undefined;

/** Entries of row i: 2^(W-1), except the top row, whose digit is its few bits plus a carry. */
function rowEntries(i: number): number {
  const bits = SCALAR_BITS - WINDOW_BITS * i;
  return bits >= WINDOW_BITS ? HALF_WINDOW : Math.min(HALF_WINDOW, 2 ** bits);
}

/** What we use of sm-crypto-v2's point class: its field and its affine constructor. */
interface PointStatics {
  Fp: { mul(a: bigint, b: bigint): bigint; inv(a: bigint): bigint };
  fromAffine(p: { x: bigint; y: bigint }): Point;
}

/**
 * The row with every Z = 1 (one inversion for the row, Montgomery's trick): additions
 * then multiply by the shared 1 and the table holds two numbers per point, not three
 * (~5-9% faster signing for ~0.08 s more table building). Each row's ends are re-checked
 * on the curve.
 */
function normalizeRow(row: Point[]): Point[] {
  const P = (row[0] as Point).constructor as unknown as PointStatics;
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const p of row) {
    prefix.push(acc);
    acc = P.Fp.mul(acc, p.Z);
  }
  let inv = P.Fp.inv(acc);
  const out = new Array<Point>(row.length);
  for (let j = row.length - 1; j >= 0; j--) {
    const p = row[j] as Point;
    const iz = P.Fp.mul(inv, prefix[j] as bigint);
    inv = P.Fp.mul(inv, p.Z);
    out[j] = P.fromAffine({ x: P.Fp.mul(p.X, iz), y: P.Fp.mul(p.Y, iz) });
  }
  (out[0] as Point).assertValidity();
  (out[out.length - 1] as Point).assertValidity();
  return out;
}

/** Row i holds j · 2^(W·i) · G for j = 1 .. rowEntries(i), normalized to Z = 1. */
function buildTable(): Point[][] {
  const rows: Point[][] = [];
  let base = smV2.precomputePublicKey(GENERATOR_HEX, 1);
  for (let i = 0; i < TABLE_WINDOWS; i++) {
    const row: Point[] = [base];
    for (let j = 1; j < rowEntries(i); j++) row.push((row[j - 1] as Point).add(base));
    rows.push(normalizeRow(row));
    for (let b = 0; b < WINDOW_BITS; b++) base = base.double(); // 2^W · base (doublings: ~W per row, negligible)
  }
  return rows;
}

/** Bits [W·i, W·i + W) of the scalar (bit 0 = least significant). */
function windowBits(scalar: Uint8Array, i: number): number {
  const bit = WINDOW_BITS * i;
  const end = scalar.length - 1 - (bit >> 3);
  const word = (scalar[end] as number) | ((scalar[end - 1] as number) << 8) | ((scalar[end - 2] as number) << 16);
  return (word >>> (bit & 7)) & DIGIT_MASK;
}

/** k·G in projective coordinates, for 1 <= k < 2^256 (callers pass k mod n, never 0). */
function combMultiply(k: bigint): Point {
  if (k < 1n || k >= 1n << BigInt(SCALAR_BITS)) throw new RangeError("fixed-base scalar out of range");
  table ??= buildTable();
  const scalar = new Uint8Array(SCALAR_PAD + SCALAR_BITS / 8);
  scalar.set(Buffer.from(k.toString(16).padStart(SCALAR_BITS / 4, "0"), "hex"), SCALAR_PAD);
  let acc: Point | undefined;
  let carry = 0;
  for (let i = 0; i < TABLE_WINDOWS; i++) {
    let digit = windowBits(scalar, i) + carry;
    carry = digit > HALF_WINDOW ? 1 : 0;
    digit -= carry * FULL_WINDOW;
    if (digit === 0) continue;
    const entry = (table[i] as Point[])[Math.abs(digit) - 1];
    if (entry === undefined) throw new Error(`digit ${digit} beyond row ${i} of the fixed-base table`);
    const term = digit < 0 ? entry.negate() : entry;
    acc = acc === undefined ? term : acc.add(term);
  }
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
