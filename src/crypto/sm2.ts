/**
 * SM2 signatures (GB/T 32918) over sm-crypto-v2, with our own deterministic nonce.
 *
 * - Keys: private key 32 bytes big-endian; public key 65 bytes uncompressed (04 || x || y).
 * - Signatures: DER SEQUENCE { r INTEGER, s INTEGER }, as X.509 and OpenSSL expect.
 * - Message digest: e = SM3(Z || M) with Z from the user ID (default 1234567812345678);
 *   SM3 runs in node:crypto, the curve arithmetic in sm-crypto-v2 (k·G through our table
 *   on its point operations, sm2-base.ts).
 * - Nonce: k = HMAC-SM3(d, e || counter), a PRF of key and digest (RFC 6979's idea in one
 *   HMAC), so the same key and message always give the same signature and a replayed run
 *   is byte-identical.
 */
import { sm2 as smV2 } from "sm-crypto-v2";
import { hmacSm3, sm3 } from "./sm3.ts";
import { fixedBaseMultiply } from "./sm2-base.ts";
import type { Rng } from "../sim/index.ts";

export const SM2_PRIVATE_KEY_BYTES = 32;
export const SM2_PUBLIC_KEY_BYTES = 65;
export const SM2_DEFAULT_USER_ID = "1234567812345678";

const CURVE_A = hexBytes("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const CURVE_B = hexBytes("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const GENERATOR_X = hexBytes("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const GENERATOR_Y = hexBytes("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");
const ORDER_N = BigInt("0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");

export interface Sm2KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt("0x" + hex(bytes));
}

function bigIntTo32(value: bigint): Uint8Array {
  return hexBytes(value.toString(16).padStart(64, "0"));
}

function checkPrivateKey(privateKey: Uint8Array): bigint {
  if (privateKey.length !== SM2_PRIVATE_KEY_BYTES) throw new RangeError(`SM2 private key must be ${SM2_PRIVATE_KEY_BYTES} bytes`);
  const d = bytesToBigInt(privateKey);
  // d + 1 must be invertible mod n, so d lies in [1, n - 2].
  if (d < 1n || d > ORDER_N - 2n) throw new RangeError("SM2 private key out of range");
  return d;
}

export function isValidSm2PublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== SM2_PUBLIC_KEY_BYTES || publicKey[0] !== 0x04) return false;
  try {
    return smV2.verifyPublicKey(hex(publicKey));
  } catch {
    return false; // sm-crypto-v2 throws "bad point: is not on curve" rather than answering false
  }
}

export function sm2PublicKeyFromPrivate(privateKey: Uint8Array): Uint8Array {
  const d = checkPrivateKey(privateKey);
  const { x, y } = fixedBaseMultiply(d);
  const publicKey = new Uint8Array(SM2_PUBLIC_KEY_BYTES);
  publicKey[0] = 0x04;
  publicKey.set(bigIntTo32(x), 1);
  publicKey.set(bigIntTo32(y), 1 + SM2_PRIVATE_KEY_BYTES);
  return publicKey;
}

/** A key pair drawn from the run's PRNG (on the card: from its RNG), so runs replay. */
export function sm2GenerateKeyPair(rng: Rng): Sm2KeyPair {
  for (;;) {
    const d = bytesToBigInt(rng.bytes(SM2_PRIVATE_KEY_BYTES));
    if (d >= 1n && d <= ORDER_N - 2n) {
      const privateKey = bigIntTo32(d);
      return { privateKey, publicKey: sm2PublicKeyFromPrivate(privateKey) };
    }
  }
}

/** Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), GB/T 32918.2 section 5.5. */
export function sm2UserHashZ(publicKey: Uint8Array, userId: string = SM2_DEFAULT_USER_ID): Uint8Array {
  if (publicKey.length !== SM2_PUBLIC_KEY_BYTES) throw new RangeError("SM2 public key must be 65 bytes (04 || x || y)");
  const id = new TextEncoder().encode(userId);
  const entl = id.length * 8;
  if (entl > 0xffff) throw new RangeError("SM2 user ID too long");
  const entlBytes = new Uint8Array([entl >> 8, entl & 0xff]);
  return sm3(entlBytes, id, CURVE_A, CURVE_B, GENERATOR_X, GENERATOR_Y, publicKey.subarray(1, 33), publicKey.subarray(33, 65));
}

/** Z for the last few (public key, user ID) pairs: a card signs with one key over and over. */
const userHashCache = new Map<string, Uint8Array>();
const USER_HASH_CACHE_SIZE = 64;

function cachedUserHashZ(publicKey: Uint8Array, userId: string = SM2_DEFAULT_USER_ID): Uint8Array {
  const key = hex(publicKey) + "/" + userId;
  let z = userHashCache.get(key);
  if (!z) {
    z = sm2UserHashZ(publicKey, userId);
    if (userHashCache.size >= USER_HASH_CACHE_SIZE) userHashCache.delete(userHashCache.keys().next().value as string);
    userHashCache.set(key, z);
  }
  return z;
}

export function sm2MessageDigest(publicKey: Uint8Array, message: Uint8Array, userId?: string): Uint8Array {
  return sm3(cachedUserHashZ(publicKey, userId), message);
}

/**
 * The nonce of attempt `counter`: HMAC-SM3 keyed by the private key over the digest and a
 * 4-byte counter (the RFC 6979 idea -- a PRF of (d, e) -- in one HMAC instead of its
 * five-HMAC state machine, ~3 us against ~20 us). Same key and message, same k; another
 * message, an unrelated k. Counters that give 0 or >= n are skipped (probability ~2^-32).
 */
function nonceCandidate(privateKey: Uint8Array, digest: Uint8Array, counter: number): bigint {
  const c = new Uint8Array(4);
  new DataView(c.buffer).setUint32(0, counter);
  return bytesToBigInt(hmacSm3(privateKey, digest, c));
}

export interface Sm2SignOptions {
  userId?: string;
  /** The signer's public key; derived from the private key when absent (costs a scalar multiplication). */
  publicKey?: Uint8Array;
}

function modN(x: bigint): bigint {
  const r = x % ORDER_N;
  return r < 0n ? r + ORDER_N : r;
}

/** Modular inverse mod n by the extended Euclidean algorithm. */
function invModN(x: bigint): bigint {
  let [oldR, r] = [modN(x), ORDER_N];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new RangeError("value not invertible mod n");
  return modN(oldS);
}

/** (1 + d)^-1 mod n for the last few signing keys: a card signs with one key over and over. */
const inverseCache = new Map<bigint, bigint>();
const INVERSE_CACHE_SIZE = 16;

function inverseOnePlus(d: bigint): bigint {
  let inverse = inverseCache.get(d);
  if (inverse === undefined) {
    inverse = invModN(d + 1n);
    if (inverseCache.size >= INVERSE_CACHE_SIZE) inverseCache.delete(inverseCache.keys().next().value as bigint);
    inverseCache.set(d, inverse);
  }
  return inverse;
}

const DER_SEQUENCE = 0x30;
const DER_INTEGER = 0x02;
const DER_HEADER_BYTES = 2;

/** The minimal two's-complement body of a non-negative INTEGER below 2^256. */
function derIntegerBody(value: bigint): Uint8Array {
  const bytes = bigIntTo32(value);
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  // A set top bit needs a 0x00 pad byte; start - 1 is then either a zero byte or the pad slot.
  if ((bytes[start] as number) & 0x80) {
    if (start > 0) return bytes.subarray(start - 1);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes, 1);
    return padded;
  }
  return bytes.subarray(start);
}

/** DER SEQUENCE { r INTEGER, s INTEGER }; both fit in 33 bytes, so short-form lengths suffice. */
export function encodeSm2SignatureDer(r: bigint, s: bigint): Uint8Array {
  const rb = derIntegerBody(r);
  const sb = derIntegerBody(s);
  const out = new Uint8Array(3 * DER_HEADER_BYTES + rb.length + sb.length);
  out[0] = DER_SEQUENCE;
  out[1] = out.length - DER_HEADER_BYTES;
  out[2] = DER_INTEGER;
  out[3] = rb.length;
  out.set(rb, 2 * DER_HEADER_BYTES);
  out[2 * DER_HEADER_BYTES + rb.length] = DER_INTEGER;
  out[2 * DER_HEADER_BYTES + rb.length + 1] = sb.length;
  out.set(sb, 3 * DER_HEADER_BYTES + rb.length);
  return out;
}

export function sm2Sign(privateKey: Uint8Array, message: Uint8Array, options: Sm2SignOptions = {}): Uint8Array {
  const d = checkPrivateKey(privateKey);
  const publicKey = options.publicKey ?? sm2PublicKeyFromPrivate(privateKey);
  const digest = sm2MessageDigest(publicKey, message, options.userId);
  const e = bytesToBigInt(digest);
  const inverseOnePlusD = inverseOnePlus(d);
  // GB/T 32918.2 section 6.1 with one fixed-base scalar multiplication per attempt; the
  // next counter gives the next nonce in the (negligible) case k, r or s is unusable.
  for (let counter = 0; ; counter++) {
    const k = nonceCandidate(privateKey, digest, counter);
    if (k === 0n || k >= ORDER_N) continue;
    const r = modN(e + fixedBaseMultiply(k).x);
    if (r !== 0n && r + k !== ORDER_N) {
      const s = modN(inverseOnePlusD * (k - r * d));
      if (s !== 0n) return encodeSm2SignatureDer(r, s);
    }
  }
}

/** Precomputed tables for recently seen public keys: a bureau verifies many invoices per device. */
const publicKeyTables = new Map<string, ReturnType<typeof smV2.precomputePublicKey>>();
const PUBLIC_KEY_TABLE_CACHE_SIZE = 64;

function publicKeyPoint(publicKeyHex: string): ReturnType<typeof smV2.precomputePublicKey> {
  let point = publicKeyTables.get(publicKeyHex);
  if (!point) {
    point = smV2.precomputePublicKey(publicKeyHex);
    if (publicKeyTables.size >= PUBLIC_KEY_TABLE_CACHE_SIZE) publicKeyTables.delete(publicKeyTables.keys().next().value as string);
    publicKeyTables.set(publicKeyHex, point);
  }
  return point;
}

export function sm2Verify(publicKey: Uint8Array, message: Uint8Array, signatureDer: Uint8Array, userId?: string): boolean {
  if (!isValidSm2PublicKey(publicKey)) return false;
  const digest = sm2MessageDigest(publicKey, message, userId);
  try {
    return smV2.doVerifySignature(digest, hex(signatureDer), publicKeyPoint(hex(publicKey)), { der: true, hash: false });
  } catch {
    return false; // malformed DER is a failed verification, never a crash
  }
}
