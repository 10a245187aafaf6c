import { describe, expect, it } from "vitest";
import { eccCorrect, eccEncode, ECC_BYTES_PER_SECTOR } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";

/** Flips bit `bit` of the codeword (data bits first, then the ECC bytes). */
function flip(data: Uint8Array, ecc: Uint8Array, bit: number): void {
  const dataBits = data.length * 8;
  if (bit < dataBits) data[bit >>> 3]! ^= 1 << (bit & 7);
  else ecc[(bit - dataBits) >>> 3]! ^= 1 << ((bit - dataBits) & 7);
}

function codeword(rng: Rng, bytes: number): { data: Uint8Array; ecc: Uint8Array } {
  const data = rng.bytes(bytes);
  const ecc = new Uint8Array(ECC_BYTES_PER_SECTOR);
  eccEncode(data, 0, bytes, ecc, 0);
  return { data, ecc };
}

describe("SEC-DED ECC", () => {
  it("gives the same code when an erased (0xFF) tail of the sector is skipped", () => {
    const rng = new Rng(3);
    for (const used of [0, 1, 17, 200, 511, 512]) {
      const data = new Uint8Array(512).fill(0xff);
      data.set(rng.bytes(used));
      const full = new Uint8Array(ECC_BYTES_PER_SECTOR);
      const skipped = new Uint8Array(ECC_BYTES_PER_SECTOR);
      eccEncode(data, 0, 512, full, 0);
      eccEncode(data, 0, 512, skipped, 0, used);
      expect(skipped).toEqual(full);
    }
    // Skipping bytes that are not erased changes the code: the caller's promise matters.
    const data = rng.bytes(512);
    const full = new Uint8Array(ECC_BYTES_PER_SECTOR);
    const skipped = new Uint8Array(ECC_BYTES_PER_SECTOR);
    eccEncode(data, 0, 512, full, 0);
    eccEncode(data, 0, 512, skipped, 0, 100);
    expect(skipped).not.toEqual(full);
  });

  it("corrects every single-bit error of a 512-byte sector (data and ECC bits)", () => {
    const rng = new Rng(1);
    const { data, ecc } = codeword(rng, 512);
    const total = 512 * 8 + ECC_BYTES_PER_SECTOR * 8;
    for (let bit = 0; bit < total; bit++) {
      const d = data.slice();
      const e = ecc.slice();
      flip(d, e, bit);
      const r = eccCorrect(d, 0, 512, e, 0);
      if (r !== "corrected" || Buffer.compare(d, data) !== 0) throw new Error(`bit ${bit}: ${r}, data ${Buffer.compare(d, data) === 0 ? "restored" : "wrong"}`);
    }
  });

  it("detects every double-bit error of a 64-byte sector (exhaustive) and never miscorrects", () => {
    const rng = new Rng(2);
    const { data, ecc } = codeword(rng, 64);
    const total = 64 * 8 + ECC_BYTES_PER_SECTOR * 8;
    for (let a = 0; a < total; a++) {
      for (let b = a + 1; b < total; b++) {
        const d = data.slice();
        const e = ecc.slice();
        flip(d, e, a);
        flip(d, e, b);
        const r = eccCorrect(d, 0, 64, e, 0);
        if (r !== "uncorrectable") throw new Error(`bits ${a},${b}: ${r}`);
      }
    }
  });

  it("detects double-bit errors of a 512-byte sector (20,000 random pairs)", () => {
    const rng = new Rng(3);
    const { data, ecc } = codeword(rng, 512);
    const total = 512 * 8 + ECC_BYTES_PER_SECTOR * 8;
    for (let i = 0; i < 20_000; i++) {
      const a = rng.int(total);
      let b = rng.int(total);
      if (b === a) b = (a + 1) % total;
      const d = data.slice();
      const e = ecc.slice();
      flip(d, e, a);
      flip(d, e, b);
      const r = eccCorrect(d, 0, 512, e, 0);
      if (r !== "uncorrectable") throw new Error(`bits ${a},${b}: ${r}`);
    }
  });

  it("reports ok for clean data", () => {
    const { data, ecc } = codeword(new Rng(4), 512);
    expect(eccCorrect(data, 0, 512, ecc, 0)).toBe("ok");
  });
});
