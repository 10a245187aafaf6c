import { readFileSync } from "node:fs";
import wabtInit from "wabt";
import { describe, expect, it } from "vitest";
import { INVERT_WASM_BASE64, InvertBuffer, decodeInto, invertBytes } from "../../src/flash-store/invert.ts";
import { Rng } from "../../src/sim/index.ts";

/** The definition: every byte XOR 0xFF; true when some byte was non-zero. */
function invertReference(bytes: Uint8Array): boolean {
  let any = false;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) any = true;
    bytes[i] = (bytes[i] as number) ^ 0xff;
  }
  return any;
}

/** Checks `buffer.invert` against the definition on random ranges, erased ones included. */
function checkRandomRanges(buffer: InvertBuffer, seed: number): void {
  const rng = new Rng(seed);
  const size = buffer.bytes.length;
  for (let round = 0; round < 300; round++) {
    const offset = rng.int(size);
    const length = rng.int(size - offset + 1);
    buffer.bytes.set(rng.bytes(size));
    if (rng.int(3) === 0) buffer.bytes.fill(0, offset, offset + length); // erased: nothing but zeros in the range
    if (rng.int(4) === 0 && length > 0) buffer.bytes.fill(0, offset, offset + length).fill(1 + rng.int(255), offset + rng.int(length), offset + rng.int(length) + 1);
    const expected = buffer.bytes.slice();
    const expectedAny = invertReference(expected.subarray(offset, offset + length));
    expect(buffer.invert(offset, length), `round ${round}: [${offset}, ${offset + length})`).toBe(expectedAny);
    expect(Buffer.compare(buffer.bytes, expected), `round ${round}: [${offset}, ${offset + length})`).toBe(0);
  }
}

describe("invert (file pages are stored inverted)", () => {
  it("the embedded module is invert.wat as wabt assembles it", async () => {
    const wabt = await wabtInit();
    const source = readFileSync(new URL("../../src/flash-store/invert.wat", import.meta.url), "utf8");
    const module = wabt.parseWat("invert.wat", source, { simd: true });
    try {
      expect(Buffer.from(module.toBinary({}).buffer).toString("base64")).toBe(INVERT_WASM_BASE64);
    } finally {
      module.destroy();
    }
  });

  it("runs natively here (Node >= 20.19 has WebAssembly SIMD)", () => {
    expect(new InvertBuffer(16).native).toBe(true);
  });

  it("natively: inverts exactly the range, at any offset and length, and tells erased from written", () => {
    checkRandomRanges(new InvertBuffer(3 * 2112 + 5), 0x1a7);
  });

  it("without WebAssembly: the same contract in JavaScript", () => {
    const buffer = new InvertBuffer(3 * 2112 + 5, false);
    expect(buffer.native).toBe(false);
    checkRandomRanges(buffer, 0x1a8);
  });

  it("a buffer larger than one WebAssembly page works to its last byte", () => {
    const buffer = new InvertBuffer(70_000);
    buffer.bytes[69_999] = 0x0f;
    expect(buffer.invert(69_990, 10)).toBe(true);
    expect(buffer.bytes[69_999]).toBe(0xf0);
    expect(buffer.bytes[69_989]).toBe(0);
  });

  it("a range outside the buffer is refused and changes nothing", () => {
    for (const native of [true, false]) {
      const buffer = new InvertBuffer(64, native);
      buffer.bytes.fill(7);
      expect(() => buffer.invert(60, 5)).toThrow(RangeError);
      expect(() => buffer.invert(-1, 2)).toThrow(RangeError);
      expect(buffer.bytes.every((b) => b === 7)).toBe(true);
    }
    expect(() => new InvertBuffer(-1)).toThrow(RangeError);
  });

  it("decodeInto and invertBytes agree with the definition, aligned or not", () => {
    const rng = new Rng(0x1a9);
    const backing = rng.bytes(4096 + 8);
    for (const [offset, length] of [[0, 2112], [1, 2112], [3, 7], [4, 4096], [0, 0]] as const) {
      const raw = backing.subarray(offset, offset + length);
      const expected = raw.slice();
      const any = invertReference(expected);
      const out = new Uint8Array(length + 1).subarray(1);
      expect(decodeInto(raw, out)).toBe(any);
      expect(Buffer.compare(out, expected)).toBe(0);
      const copy = raw.slice();
      expect(invertBytes(copy)).toBe(any);
      expect(Buffer.compare(copy, expected)).toBe(0);
    }
  });
});
