import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";

/** Bit-at-a-time CRC-32 (IEEE, reflected): the definition the table-driven code must match. */
function crc32Bitwise(bytes: Uint8Array, start: number, end: number, seed: number): number {
  let c = ~seed >>> 0;
  for (let i = start; i < end; i++) {
    c ^= bytes[i] as number;
    for (let k = 0; k < 8; k++) c = c & 1 ? (0xedb88320 ^ (c >>> 1)) >>> 0 : c >>> 1;
  }
  return ~c >>> 0;
}

describe("crc32", () => {
  it("gives the standard check values", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
  });

  it("matches the bitwise definition for every length, offset and seed", () => {
    const rng = new Rng(0xc3c);
    const data = rng.bytes(64);
    for (let start = 0; start < 9; start++) {
      for (let end = start; end <= data.length; end++) {
        const seed = rng.int(0x1_0000_0000);
        expect(crc32(data, start, end, seed)).toBe(crc32Bitwise(data, start, end, seed));
      }
    }
  });

  it("chains: the CRC of a whole equals the CRC of its tail seeded with the CRC of its head", () => {
    const data = new Rng(7).bytes(1000);
    for (const cut of [0, 1, 3, 4, 5, 511, 999, 1000]) expect(crc32(data, cut, data.length, crc32(data, 0, cut))).toBe(crc32(data));
  });
});
