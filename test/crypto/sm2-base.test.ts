/**
 * Our fixed-base comb and Lehmer inversion (src/crypto/sm2-base.ts) against sm-crypto-v2's
 * own scalar multiplication and a plain BigInt Euclid.
 */
import { describe, expect, it } from "vitest";
import { sm2 as smV2 } from "sm-crypto-v2";
import { fixedBaseMultiply, invertMod, SM2_FIELD_P } from "../../src/crypto/sm2-base.ts";
import { Rng } from "../../src/sim/index.ts";

const ORDER_N = BigInt("0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123");
const G = smV2.precomputePublicKey(
  "0432C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 4,
);

function euclidInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [m, a % m, 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  expect(r0).toBe(1n);
  return ((s0 % m) + m) % m;
}

/** A scalar of `bits` bits (top bit set) from the seeded PRNG. */
function scalar(rng: Rng, bits: number): bigint {
  const v = BigInt("0x" + Buffer.from(rng.bytes(32)).toString("hex")) >> BigInt(256 - bits);
  return v | (1n << BigInt(bits - 1));
}

describe("Lehmer inversion", () => {
  it("matches the plain extended Euclid mod p and mod n, for every size of input", () => {
    const rng = new Rng(7);
    const inputs = [1n, 2n, 3n, SM2_FIELD_P - 1n, SM2_FIELD_P - 2n, ORDER_N - 1n, 1n << 49n, (1n << 50n) - 1n, 1n << 50n, (1n << 50n) + 1n, 1n << 255n];
    for (let bits = 1; bits <= 256; bits++) for (let i = 0; i < 8; i++) inputs.push(scalar(rng, bits));
    for (const m of [SM2_FIELD_P, ORDER_N]) {
      for (const a of inputs) {
        if (a % m === 0n) continue;
        const inv = invertMod(a, m);
        expect(inv, `${a} mod ${m}`).toBe(euclidInverse(a, m));
        expect((inv * a) % m).toBe(1n);
      }
    }
  });

  it("refuses values with no inverse", () => {
    expect(() => invertMod(0n, SM2_FIELD_P)).toThrow(/not invertible/);
    expect(() => invertMod(SM2_FIELD_P, SM2_FIELD_P)).toThrow(/not invertible/);
    expect(() => invertMod(6n, 9n)).toThrow(/not invertible/);
  });
});

describe("fixed-base comb k·G", () => {
  it("agrees with sm-crypto-v2's multiply on edge and random scalars", () => {
    const rng = new Rng(11);
    // Digit patterns: all-carry (0x8..., 0xf...), window boundaries, the extremes of [1, n-1].
    const ks = [1n, 2n, 2047n, 2048n, 2049n, 4095n, 4096n, ORDER_N - 1n, ORDER_N - 2048n, BigInt("0x" + "8".repeat(64)) % ORDER_N,
      BigInt("0x" + "f".repeat(63)), (1n << 256n) - 1n, BigInt("0x" + "801".repeat(21)), BigInt("0x" + "7ff".repeat(21))];
    for (let i = 0; i < 60; i++) ks.push(scalar(rng, 1 + ((i * 37) % 256)) % ORDER_N || 1n);
    for (const k of ks) {
      const ours = fixedBaseMultiply(k);
      const theirs = G.multiply(k % ORDER_N).toAffine(); // k·G = (k mod n)·G; sm-crypto-v2 takes only k < n
      expect(ours.x, `k = ${k.toString(16)}`).toBe(theirs.x);
      expect(ours.y).toBe(theirs.y);
    }
  });

  it("refuses a zero or over-long scalar", () => {
    expect(() => fixedBaseMultiply(0n)).toThrow(/out of range/);
    expect(() => fixedBaseMultiply(1n << 256n)).toThrow(/out of range/);
  });
});
