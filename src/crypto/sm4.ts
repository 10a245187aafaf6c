import { createCipheriv, createDecipheriv } from "node:crypto";

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

export function sm4EncryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  checkBlocks(data, "SM4-ECB input");
  return run(createCipheriv("sm4-ecb", key, null), data);
}

export function sm4DecryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  checkBlocks(data, "SM4-ECB input");
  return run(createDecipheriv("sm4-ecb", key, null), data);
}

export function sm4EncryptCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  checkBlocks(data, "SM4-CBC input");
  return run(createCipheriv("sm4-cbc", key, iv), data);
}

export function sm4DecryptCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  checkBlocks(data, "SM4-CBC input");
  return run(createDecipheriv("sm4-cbc", key, iv), data);
}

/** SM4-CTR keystream XOR; encryption and decryption are the same operation. Any length. */
export function sm4Ctr(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array): Uint8Array {
  checkKey(key);
  if (counterBlock.length !== SM4_BLOCK_BYTES) throw new RangeError(`SM4-CTR counter must be ${SM4_BLOCK_BYTES} bytes`);
  return run(createCipheriv("sm4-ctr", key, counterBlock), data);
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
