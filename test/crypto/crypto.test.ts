import { describe, expect, it } from "vitest";
import smV1 from "sm-crypto";
import { sm2 as smV2 } from "sm-crypto-v2";
import {
  sm3, sm4EncryptEcb, sm4DecryptEcb, sm4CbcMac, sm2GenerateKeyPair, sm2Sign, sm2Verify,
  sm2PublicKeyFromPrivate, sm2MessageDigest, sm2UserHashZ, padIso9797M2, unpadIso9797M2,
} from "../../src/crypto/index.ts";
import { Rng } from "../../src/sim/index.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

describe("SM3 (GB/T 32905 vectors)", () => {
  it("hashes 'abc'", () => {
    expect(hex(sm3(new TextEncoder().encode("abc")))).toBe("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  });
  it("hashes the 64-byte 'abcd' x16 vector", () => {
    expect(hex(sm3(new TextEncoder().encode("abcd".repeat(16))))).toBe("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
  });
});

describe("SM4 (GB/T 32907 vector)", () => {
  const key = bytes("0123456789abcdeffedcba9876543210");
  it("encrypts and decrypts the standard block", () => {
    const ct = sm4EncryptEcb(key, key);
    expect(hex(ct)).toBe("681edf34d206965e86b3e94f536e4246");
    expect(hex(sm4DecryptEcb(key, ct))).toBe(hex(key));
  });
  it("rejects wrong key sizes and ragged input with a clear error", () => {
    expect(() => sm4EncryptEcb(new Uint8Array(15), key)).toThrow(/16 bytes/);
    expect(() => sm4EncryptEcb(key, new Uint8Array(5))).toThrow(/multiple of 16/);
  });
  it("pads and unpads ISO 9797-1 method 2, and MACs depend on every byte", () => {
    const msg = bytes("00112233");
    expect(hex(unpadIso9797M2(padIso9797M2(msg)))).toBe("00112233");
    expect(() => unpadIso9797M2(new Uint8Array(16))).toThrow(/padding/);
    const mac = sm4CbcMac(key, msg);
    expect(mac).toHaveLength(16);
    expect(hex(sm4CbcMac(key, bytes("00112234")))).not.toBe(hex(mac));
  });
});

describe("SM2", () => {
  const rng = new Rng(42);
  const pair = sm2GenerateKeyPair(rng);
  const message = new TextEncoder().encode("invoice 0001");

  it("signs deterministically and verifies", () => {
    const a = sm2Sign(pair.privateKey, message, { publicKey: pair.publicKey });
    const b = sm2Sign(pair.privateKey, message);
    expect(hex(a)).toBe(hex(b));
    expect(a[0]).toBe(0x30); // DER SEQUENCE
    expect(sm2Verify(pair.publicKey, message, a)).toBe(true);
    expect(sm2Verify(pair.publicKey, new TextEncoder().encode("invoice 0002"), a)).toBe(false);
    expect(sm2Verify(pair.publicKey, message, a, "another-id")).toBe(false);
  });

  it("cross-checks with sm-crypto (v1) in both directions", () => {
    const privHex = hex(pair.privateKey);
    const pubHex = hex(pair.publicKey);
    expect(smV1.sm2.getPublicKeyFromPrivateKey(privHex)).toBe(pubHex);
    const msgHex = hex(message);
    const oursDer = hex(sm2Sign(pair.privateKey, message));
    // sm-crypto v1 takes strings as UTF-8; hand it the message text and ask it to hash with the default ID.
    expect(smV1.sm2.doVerifySignature("invoice 0001", oursDer, pubHex, { der: true, hash: true })).toBe(true);
    const theirs = smV1.sm2.doSignature("invoice 0001", privHex, { der: true, hash: true });
    expect(sm2Verify(pair.publicKey, bytes(msgHex), bytes(theirs))).toBe(true);
  });

  it("computes Z as sm-crypto-v2 does for the default user ID", () => {
    expect(hex(sm2UserHashZ(pair.publicKey))).toBe(hex(smV2.getZ(hex(pair.publicKey))));
    expect(hex(sm2MessageDigest(pair.publicKey, message))).toBe(smV2.getHash(hex(message), hex(pair.publicKey)));
  });

  it("returns false, never throws, on garbage signatures and keys", () => {
    expect(sm2Verify(pair.publicKey, message, bytes("3000"))).toBe(false);
    expect(sm2Verify(pair.publicKey, message, new Uint8Array(0))).toBe(false);
    expect(sm2Verify(new Uint8Array(65), message, bytes("3000"))).toBe(false);
  });

  it("rejects out-of-range private keys", () => {
    expect(() => sm2PublicKeyFromPrivate(new Uint8Array(32))).toThrow(/range/);
    expect(() => sm2Sign(new Uint8Array(31), message)).toThrow(/32 bytes/);
  });
});
