/**
 * The live-cipher SM4 paths (src/crypto/sm4.ts) against a fresh node:crypto cipher per
 * call, with keys, IVs and lengths interleaved so a stale chaining block or counter shows.
 */
import { describe, expect, it } from "vitest";
import { createCipheriv } from "node:crypto";
import { sm4Ctr, sm4DecryptCbc, sm4EncryptCbc, sm4EncryptEcb, sm4CbcMac, padIso9797M2 } from "../../src/crypto/index.ts";
import { Rng } from "../../src/sim/index.ts";

function fresh(mode: string, key: Uint8Array, iv: Uint8Array | null, data: Uint8Array): string {
  const c = createCipheriv(mode, key, iv).setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]).toString("hex");
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("SM4 through live ciphers", () => {
  const rng = new Rng(99);
  // More keys than the live cache holds, so entries are evicted and re-created.
  const keys = Array.from({ length: 20 }, () => rng.bytes(16));

  it("ECB, CBC and CTR equal a fresh cipher per call, for any call order", () => {
    for (let i = 0; i < 600; i++) {
      const key = keys[rng.int(keys.length)] as Uint8Array;
      const iv = rng.bytes(16);
      const blocks = rng.bytes(16 * rng.int(9));
      const ragged = rng.bytes(rng.int(i % 2 ? 200 : 900));
      expect(hex(sm4EncryptEcb(key, blocks))).toBe(fresh("sm4-ecb", key, null, blocks));
      expect(hex(sm4EncryptCbc(key, iv, blocks))).toBe(fresh("sm4-cbc", key, iv, blocks));
      expect(hex(sm4Ctr(key, iv, ragged))).toBe(fresh("sm4-ctr", key, iv, ragged));
    }
  });

  it("CTR carries its counter across all 128 bits, as OpenSSL does", () => {
    const key = keys[0] as Uint8Array;
    for (const tail of ["ff", "ffff", "ffffffff", "ffffffffffffffff", "ff".repeat(16)]) {
      const counter = new Uint8Array(Buffer.from(tail.padStart(32, "0"), "hex"));
      counter[0] = tail.length === 32 ? 0xff : 0x12;
      const data = rng.bytes(100);
      expect(hex(sm4Ctr(key, counter, data))).toBe(fresh("sm4-ctr", key, counter, data));
      expect(hex(sm4Ctr(key, counter, sm4Ctr(key, counter, data)))).toBe(hex(data));
    }
  });

  it("CBC round-trips and the CBC-MAC is the last block of a zero-IV CBC", () => {
    const key = keys[3] as Uint8Array;
    const iv = rng.bytes(16);
    const data = rng.bytes(64);
    expect(hex(sm4DecryptCbc(key, iv, sm4EncryptCbc(key, iv, data)))).toBe(hex(data));
    const msg = rng.bytes(37);
    expect(hex(sm4CbcMac(key, msg))).toBe(fresh("sm4-cbc", key, new Uint8Array(16), padIso9797M2(msg)).slice(-32));
  });

  it("returns empty output for empty input", () => {
    const key = keys[1] as Uint8Array;
    expect(sm4Ctr(key, new Uint8Array(16), new Uint8Array(0))).toHaveLength(0);
    expect(sm4EncryptCbc(key, new Uint8Array(16), new Uint8Array(0))).toHaveLength(0);
    expect(sm4EncryptEcb(key, new Uint8Array(0))).toHaveLength(0);
  });
});
