import { describe, expect, it } from "vitest";
import { allocColumns, releaseColumns, scratchBytes, spareTableBytes } from "../../src/flash-store/columns.ts";
import { Slab, SLAB_BYTES } from "../../src/flash-store/slab.ts";

describe("Slab", () => {
  it("hands out independent, aligned pieces that start at the fill byte", () => {
    const slab = new Slab(0xff);
    const a = slab.carve(13);
    const b = slab.carve(40);
    expect([...a].every((v) => v === 0xff)).toBe(true);
    expect([...b].every((v) => v === 0xff)).toBe(true);
    a.fill(0);
    expect([...b].every((v) => v === 0xff)).toBe(true); // writing one piece leaves the next alone
    expect(b.byteOffset % 8).toBe(0);
    expect(a.length).toBe(13);
  });

  it("gives a large request a buffer of its own, and starts a new slab when one is used up", () => {
    const slab = new Slab(0);
    const big = slab.carve(SLAB_BYTES / 4 + 1);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(SLAB_BYTES / 4 + 1);
    const first = slab.carve(SLAB_BYTES / 4);
    for (let i = 0; i < 4; i++) slab.carve(SLAB_BYTES / 4);
    const later = slab.carve(8);
    expect(later.buffer).not.toBe(first.buffer);
    expect([...later].every((v) => v === 0)).toBe(true);
  });
});

describe("allocColumns", () => {
  const SPEC = { small: Uint8Array, mid: Uint16Array, wide: Int32Array, big: Float64Array } as const;

  it("lays every column out aligned, disjoint and zeroed, in one buffer", () => {
    const c = allocColumns(SPEC, 5);
    expect(new Set([c.small.buffer, c.mid.buffer, c.wide.buffer, c.big.buffer]).size).toBe(1);
    const ranges = [c.small, c.mid, c.wide, c.big].map((a) => [a.byteOffset, a.byteOffset + a.byteLength] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
    for (const a of [c.small, c.mid, c.wide, c.big]) {
      expect(a.length).toBe(5);
      expect(a.byteOffset % a.BYTES_PER_ELEMENT).toBe(0);
      expect([...a].every((v) => v === 0)).toBe(true);
    }
    c.big.fill(-1.5);
    c.wide.fill(-7);
    expect([...c.small, ...c.mid].every((v) => v === 0)).toBe(true);
  });

  it("copies the old columns when a table grows, and the copies are independent", () => {
    const a = allocColumns(SPEC, 3);
    a.wide.set([1, -2, 3]);
    a.big.set([0.5, 2 ** 40, -1]);
    a.small.set([9, 8, 7]);
    const b = allocColumns(SPEC, 6, a);
    expect([...b.wide]).toEqual([1, -2, 3, 0, 0, 0]);
    expect([...b.big]).toEqual([0.5, 2 ** 40, -1, 0, 0, 0]);
    expect([...b.small]).toEqual([9, 8, 7, 0, 0, 0]);
    b.wide[0] = 42;
    expect(a.wide[0]).toBe(1);
  });

  it("refuses a negative or fractional row count", () => {
    expect(() => allocColumns(SPEC, -1)).toThrow(RangeError);
    expect(() => allocColumns(SPEC, 1.5)).toThrow(RangeError);
  });
});

describe("spare table memory (releaseColumns)", () => {
  const SPEC = { a: Float64Array, b: Uint8Array } as const;
  const LARGE_ROWS = 4096; // 36 KiB: a buffer of its own, not a slab piece

  it("gives a released table's buffer to the next table of a fitting size, zeroed again", () => {
    const first = allocColumns(SPEC, LARGE_ROWS);
    first.a.fill(3.5);
    first.b.fill(9);
    const buffer = first.a.buffer;
    const before = spareTableBytes();
    releaseColumns(first);
    expect(spareTableBytes()).toBe(before + buffer.byteLength);
    releaseColumns(first); // twice: still one spare
    expect(spareTableBytes()).toBe(before + buffer.byteLength);
    const second = allocColumns(SPEC, LARGE_ROWS - 10);
    expect(second.a.buffer).toBe(buffer);
    expect(spareTableBytes()).toBe(before);
    expect([...second.a].every((v) => v === 0) && [...second.b].every((v) => v === 0)).toBe(true);
  });

  it("leaves slab pieces alone, and never serves a small table from a much larger spare", () => {
    const before = spareTableBytes();
    releaseColumns(allocColumns(SPEC, 10)); // a slab piece: other tables share its slab
    expect(spareTableBytes()).toBe(before);
    const big = allocColumns(SPEC, LARGE_ROWS * 4);
    releaseColumns(big);
    const small = allocColumns(SPEC, LARGE_ROWS);
    expect(small.a.buffer).not.toBe(big.a.buffer);
    expect(allocColumns(SPEC, LARGE_ROWS * 3).a.buffer).toBe(big.a.buffer);
  });

  it("hands out scratch bytes from the spares too (content unspecified), and small scratch from a slab", () => {
    const spare = scratchBytes(100_000);
    spare.fill(7);
    releaseColumns({ bytes: spare });
    const again = scratchBytes(90_000);
    expect(again.buffer).toBe(spare.buffer);
    expect(scratchBytes(100).buffer.byteLength).toBe(SLAB_BYTES);
  });
});
