/**
 * The signing nonce (HMAC-SM3 of key and digest): deterministic per (key, message), never
 * shared between messages or keys, and every signature verifies here and in sm-crypto v1.
 */
import { describe, expect, it } from "vitest";
import smV1 from "sm-crypto";
import { sm2GenerateKeyPair, sm2MessageDigest, sm2Sign, sm2Verify } from "../../src/crypto/index.ts";
import { Rng } from "../../src/sim/index.ts";

const ORDER_N = BigInt("0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const int = (b: Uint8Array) => BigInt("0x" + hex(b));

/** x(k·G) of a signature: r - e mod n (SM2's r = e + x1). Equal values would mean a reused nonce. */
function nonceX(der: Uint8Array, digest: Uint8Array): bigint {
  const r = int(der.subarray(4, 4 + (der[3] as number)));
  return (((r - int(digest)) % ORDER_N) + ORDER_N) % ORDER_N;
}

describe("SM2 nonce", () => {
  const a = sm2GenerateKeyPair(new Rng(21));
  const b = sm2GenerateKeyPair(new Rng(22));

  it("gives the same signature for the same key and message, and verifies here and in sm-crypto v1", () => {
    const text = "发票 0001";
    const m = new TextEncoder().encode(text);
    const s1 = sm2Sign(a.privateKey, m, { publicKey: a.publicKey });
    expect(hex(sm2Sign(a.privateKey, m))).toBe(hex(s1));
    expect(sm2Verify(a.publicKey, m, s1)).toBe(true);
    expect(smV1.sm2.doVerifySignature(text, hex(s1), hex(a.publicKey), { der: true, hash: true })).toBe(true);
  });

  it("never reuses a nonce across messages or keys", () => {
    const xs = new Set<bigint>();
    for (let i = 0; i < 150; i++) {
      const m = new Uint8Array(40).fill(i & 0xff);
      m[0] = i >> 8;
      for (const pair of [a, b]) {
        const sig = sm2Sign(pair.privateKey, m, { publicKey: pair.publicKey });
        expect(sm2Verify(pair.publicKey, m, sig)).toBe(true);
        xs.add(nonceX(sig, sm2MessageDigest(pair.publicKey, m)));
      }
    }
    expect(xs.size).toBe(300);
  });
});
