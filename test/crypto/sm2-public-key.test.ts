import { describe, expect, it } from "vitest";
import { isValidSm2PublicKey, sm2GenerateKeyPair, sm2Sign, sm2Verify } from "../../src/crypto/index.ts";
import { Rng } from "../../src/sim/index.ts";

describe("SM2 public-key validation", () => {
  it("answers false, never throws, for a 65-byte 04-prefixed value that is not on the curve", () => {
    const offCurve = Uint8Array.of(0x04, ...new Uint8Array(64));
    expect(isValidSm2PublicKey(offCurve)).toBe(false);
    const pair = sm2GenerateKeyPair(new Rng(3));
    const message = new TextEncoder().encode("m");
    expect(sm2Verify(offCurve, message, sm2Sign(pair.privateKey, message))).toBe(false);
    const nudged = pair.publicKey.slice();
    nudged[64] = (nudged[64] as number) ^ 1;
    expect(isValidSm2PublicKey(nudged)).toBe(false);
    expect(isValidSm2PublicKey(pair.publicKey)).toBe(true);
  });
});
