/**
 * SM4 from node:crypto. Creating a node cipher (key schedule, OpenSSL context) costs more
 * than encrypting a record, and a card keeps its key schedules in RAM anyway: encryption
 * goes through live cipher objects kept per key (a few keys at a time). ECB and CTR use a
 * live ECB encryptor (short CTR = ECB of the counter blocks XOR data); CBC uses a live CBC
 * encryptor whose chaining block we track, folding it into the first block of each call.
 * Decryption (not on any hot path) creates its cipher per call.
 */
import { createCipheriv, createDecipheriv, type Cipher } from "node:crypto";

export const SM4_KEY_BYTES = 16;
export const SM4_BLOCK_BYTES = 16;

function checkKey(key: Uint8Array): void {
  if (key.length !== SM4_KEY_BYTES) throw new RangeError(`SM4 key must be ${SM4_KEY_BYTES} bytes, got ${key.length}`);
}

function checkBlocks(data: Uint8Array, what: string): void {
  if (data.length % SM4_BLOCK_BYTES !== 0) throw new RangeError(`${what} must be a multiple of ${SM4_BLOCK_BYTES} bytes, got ${data.length}`);
}

function run(cipher: ReturnType<typeof createCipheriv> | ReturnType<typeof createDecipheriv>, data: Uint8Array): Uint8Array {
  cipher.setAutoPadding(false);
  const out = Buffer.concat([cipher.update(data), cipher.final()]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Live encryptors for the last few keys; a key's entry holds its ECB and CBC contexts. */
const LIVE_KEYS = 16;
interface LiveKey {
  /** A copy of the key: a caller's array may change after we met it. */
  key: Uint8Array;
  ecb: Cipher;
  cbc: Cipher;
  /** The CBC encryptor's chaining block: its IV, then the last ciphertext block it produced. */
  chain: Uint8Array;
}
const liveKeys = new Map<string, LiveKey>();
/** Fast path: the same key array as last time (callers keep theirs), its bytes re-checked. */
const byArray = new WeakMap<Uint8Array, LiveKey>();

function liveKey(key: Uint8Array): LiveKey {
  checkKey(key);
  const known = byArray.get(key);
  if (known && sameBytes(known.key, key)) return known;
  const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
  let live = liveKeys.get(id);
  if (!live) {
    const chain = new Uint8Array(SM4_BLOCK_BYTES);
    live = { key: key.slice(), ecb: createCipheriv("sm4-ecb", key, null).setAutoPadding(false), cbc: createCipheriv("sm4-cbc", key, chain).setAutoPadding(false), chain };
    if (liveKeys.size >= LIVE_KEYS) liveKeys.delete(liveKeys.keys().next().value as string);
    liveKeys.set(id, live);
  }
  byArray.set(key, live);
  return live;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whole blocks through a live cipher: without padding, update() returns every block at once. */
function update(cipher: Cipher, blocks: Uint8Array): Uint8Array {
  const out = cipher.update(blocks);
  if (out.length !== blocks.length) throw new Error(`SM4 returned ${out.length} bytes for ${blocks.length}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export function sm4EncryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkBlocks(data, "SM4-ECB input");
  return update(liveKey(key).ecb, data);
}

export function sm4DecryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  checkBlocks(data, "SM4-ECB input");
  return run(createDecipheriv("sm4-ecb", key, null), data);
}

/**
 * The live CBC encryptor XORs the first block with its chaining block; XORing that block
 * and our IV in beforehand makes it E(P1 ^ IV), as a fresh cipher with this IV would.
 */
export function sm4EncryptCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkBlocks(data, "SM4-CBC input");
  if (iv.length !== SM4_BLOCK_BYTES) throw new RangeError(`SM4-CBC IV must be ${SM4_BLOCK_BYTES} bytes`);
  const live = liveKey(key);
  if (data.length === 0) return new Uint8Array(0);
  const input = data.slice();
  for (let i = 0; i < SM4_BLOCK_BYTES; i++) input[i] = (input[i] as number) ^ (live.chain[i] as number) ^ (iv[i] as number);
  const out = update(live.cbc, input);
  live.chain = out.slice(out.length - SM4_BLOCK_BYTES);
  return out;
}

export function sm4DecryptCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  checkBlocks(data, "SM4-CBC input");
  return run(createDecipheriv("sm4-cbc", key, iv), data);
}

/** SM4-CTR keystream XOR; encryption and decryption are the same operation. Any length. */
/** Up to this length CTR runs on the live ECB encryptor (measured break-even: ~400 bytes). */
const LIVE_CTR_MAX_BYTES = 384;

export function sm4Ctr(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array): Uint8Array {
  if (counterBlock.length !== SM4_BLOCK_BYTES) throw new RangeError(`SM4-CTR counter must be ${SM4_BLOCK_BYTES} bytes`);
  const live = liveKey(key);
  if (data.length === 0) return new Uint8Array(0);
  // Past a few hundred bytes our counter blocks and XOR cost more than a fresh cipher's setup.
  if (data.length > LIVE_CTR_MAX_BYTES) return run(createCipheriv("sm4-ctr", key, counterBlock), data);
  const keystream = update(live.ecb, counterBlocks(counterBlock, Math.ceil(data.length / SM4_BLOCK_BYTES)));
  // The keystream is ours (fresh from update()): XOR the data into it and return its head.
  for (let i = 0; i < data.length; i++) keystream[i] = (keystream[i] as number) ^ (data[i] as number);
  return keystream.subarray(0, data.length);
}

/**
 * `count` successive counter blocks from `first`, counted as one big-endian 128-bit number
 * (as OpenSSL's CTR mode does). Usually only the low 32 bits move; a carry past them takes
 * the block-by-block path.
 */
function counterBlocks(first: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count * SM4_BLOCK_BYTES);
  out.set(first);
  for (let filled = SM4_BLOCK_BYTES; filled < out.length; filled *= 2) out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
  const view = new DataView(out.buffer);
  const low = view.getUint32(SM4_BLOCK_BYTES - 4);
  if (low + count - 1 <= 0xffff_ffff) {
    for (let b = 1; b < count; b++) view.setUint32(b * SM4_BLOCK_BYTES + SM4_BLOCK_BYTES - 4, low + b);
    return out;
  }
  for (let b = 1; b < count; b++) {
    out.copyWithin(b * SM4_BLOCK_BYTES, (b - 1) * SM4_BLOCK_BYTES, b * SM4_BLOCK_BYTES);
    incrementBlock(out, b * SM4_BLOCK_BYTES);
  }
  return out;
}

/** The 16-byte block at `offset` as a big-endian 128-bit counter, plus one (wrapping). */
function incrementBlock(block: Uint8Array, offset: number): void {
  for (let i = offset + SM4_BLOCK_BYTES - 1; i >= offset; i--) {
    block[i] = ((block[i] as number) + 1) & 0xff;
    if (block[i] !== 0) return;
  }
}

/** ISO/IEC 9797-1 padding method 2: 0x80 then zeros to the block size (always adds a byte). */
export function padIso9797M2(data: Uint8Array): Uint8Array {
  const padded = new Uint8Array((Math.floor(data.length / SM4_BLOCK_BYTES) + 1) * SM4_BLOCK_BYTES);
  padded.set(data);
  padded[data.length] = 0x80;
  return padded;
}

export function unpadIso9797M2(data: Uint8Array): Uint8Array {
  let end = data.length - 1;
  while (end >= 0 && data[end] === 0x00) end--;
  if (end < 0 || data[end] !== 0x80 || data.length - end > SM4_BLOCK_BYTES) throw new RangeError("bad ISO 9797-1 M2 padding");
  return data.subarray(0, end);
}

/**
 * SM4 CBC-MAC (ISO/IEC 9797-1 MAC algorithm 1, padding method 2, zero IV): the MAC
 * of GM/T-style secure messaging. Returns the full 16-byte block; callers truncate.
 */
export function sm4CbcMac(key: Uint8Array, data: Uint8Array, iv: Uint8Array = new Uint8Array(SM4_BLOCK_BYTES)): Uint8Array {
  const encrypted = sm4EncryptCbc(key, iv, padIso9797M2(data));
  return encrypted.slice(encrypted.length - SM4_BLOCK_BYTES);
}
