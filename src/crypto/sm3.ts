import { createHash, createHmac } from "node:crypto";

export const SM3_DIGEST_BYTES = 32;

export function sm3(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sm3");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

export function hmacSm3(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const mac = createHmac("sm3", key);
  for (const part of parts) mac.update(part);
  return new Uint8Array(mac.digest());
}
