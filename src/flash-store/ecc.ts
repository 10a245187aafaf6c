/**
 * SEC-DED ECC per sector: the classic NAND "line/column parity" Hamming code.
 *
 * For data bits numbered b = byteIndex*8 + bitIndex, let X be the XOR of the numbers b of
 * all bits that are 1 and T their overall parity. We store A = X and B = X ^ (T ? ~0 : 0)
 * (NBITS bits each; 12 bits for a 512-byte sector, so 3 bytes). On read, with dA and dB the
 * differences between stored and recomputed values:
 *   - dA = dB = 0                      -> no error;
 *   - dA ^ dB = all ones               -> exactly one data bit flipped, at number dA: corrected;
 *   - popcount(dA) + popcount(dB) = 1  -> one bit of the stored ECC itself flipped: data fine;
 *   - anything else                    -> uncorrectable (every 2-bit error lands here).
 * Two data bits b1 != b2 give dA = dB = b1 ^ b2 != 0, so dA ^ dB = 0: detected, never
 * "corrected". The code is table-driven: per byte one parity lookup and one XOR.
 */
import { ECC_BYTES_PER_SECTOR } from "./geometry.ts";

/** Bits in each of A and B: enough to number every bit of the largest sector we code. */
const INDEX_BITS = 12;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
/** Largest sector this code covers: 2^INDEX_BITS bits. */
export const ECC_MAX_SECTOR_BYTES = (1 << INDEX_BITS) / 8;

const BYTE_PARITY = new Uint8Array(256);
/** XOR of the bit numbers (0..7) of the set bits of a byte. */
const BYTE_BITX = new Uint8Array(256);
for (let v = 0; v < 256; v++) {
  let p = 0;
  let x = 0;
  for (let j = 0; j < 8; j++) if (v & (1 << j)) { p ^= 1; x ^= j; }
  BYTE_PARITY[v] = p;
  BYTE_BITX[v] = x;
}

function popcount(v: number): number {
  let c = 0;
  while (v) { v &= v - 1; c++; }
  return c;
}

/** (X << 1) | T for data[start, start+length). */
function syndromeOf(data: Uint8Array, start: number, length: number): number {
  let lineX = 0;
  let colX = 0;
  let parity = 0;
  for (let i = 0; i < length; i++) {
    const v = data[start + i] as number;
    const p = BYTE_PARITY[v] as number;
    parity ^= p;
    colX ^= BYTE_BITX[v] as number;
    if (p) lineX ^= i << 3;
  }
  return ((lineX ^ colX) << 1) | parity;
}

/**
 * Computes the ECC of data[start, start+length) into out[outOffset .. +3). When the caller
 * knows that the sector's bytes from `erasedFrom` on are all 0xFF (an erased tail), they are
 * skipped: a 0xFF byte has even parity and bit-number XOR 0 (0^1^...^7), so it adds nothing
 * to the syndrome, and the ECC is the same.
 */
export function eccEncode(data: Uint8Array, start: number, length: number, out: Uint8Array, outOffset: number, erasedFrom = start + length): void {
  if (length > ECC_MAX_SECTOR_BYTES) throw new RangeError(`ECC sector is at most ${ECC_MAX_SECTOR_BYTES} bytes`);
  const s = syndromeOf(data, start, Math.max(0, Math.min(length, erasedFrom - start)));
  const a = s >>> 1;
  const b = s & 1 ? a ^ INDEX_MASK : a;
  const packed = (a << INDEX_BITS) | b; // 24 bits
  out[outOffset] = packed >>> 16;
  out[outOffset + 1] = (packed >>> 8) & 0xff;
  out[outOffset + 2] = packed & 0xff;
}

export type EccResult = "ok" | "corrected" | "uncorrectable";

/**
 * Checks data[start, start+length) against its stored ECC and corrects one flipped data
 * bit in place. Returns what it found. Never changes the data unless it returns "corrected".
 */
export function eccCorrect(data: Uint8Array, start: number, length: number, ecc: Uint8Array, eccOffset: number): EccResult {
  const packed = ((ecc[eccOffset] as number) << 16) | ((ecc[eccOffset + 1] as number) << 8) | (ecc[eccOffset + 2] as number);
  const storedA = (packed >>> INDEX_BITS) & INDEX_MASK;
  const storedB = packed & INDEX_MASK;
  const s = syndromeOf(data, start, length);
  const a = s >>> 1;
  const b = s & 1 ? a ^ INDEX_MASK : a;
  const dA = storedA ^ a;
  const dB = storedB ^ b;
  if (dA === 0 && dB === 0) return "ok";
  if ((dA ^ dB) === INDEX_MASK) {
    const byte = dA >>> 3;
    if (byte >= length) return "uncorrectable";
    data[start + byte] = (data[start + byte] as number) ^ (1 << (dA & 7));
    return "corrected";
  }
  if (popcount(dA) + popcount(dB) === 1) return "corrected"; // the stored ECC took the hit
  return "uncorrectable";
}

export { ECC_BYTES_PER_SECTOR };
