import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/flash-store/index.ts";
import { crc32Table } from "../../src/flash-store/crc32.ts";
import { Rng } from "../../src/sim/index.ts";

describe("crc32 on page-sized inputs (native path when Node has zlib.crc32)", () => {
  it("equals the table-driven CRC for long ranges at any offset, with any seed", () => {
    const rng = new Rng(0x5eed);
    const data = rng.bytes(2112 * 2);
    for (const [start, end] of [[0, data.length], [0, 64], [1, 65], [3, 2048], [16, 2112], [100, 4000], [7, 63]] as const) {
      const seed = rng.int(0x1_0000_0000);
      expect(crc32(data, start, end, seed)).toBe(crc32Table(data, start, end, seed));
      expect(crc32(data, start, end)).toBe(crc32Table(data, start, end));
    }
  });

  it("chains across the native and the table path", () => {
    const data = new Rng(9).bytes(5000);
    for (const cut of [10, 63, 64, 65, 2000, 4990]) expect(crc32(data, cut, data.length, crc32(data, 0, cut))).toBe(crc32Table(data));
  });
});
