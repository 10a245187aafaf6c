/**
 * In-place inversion (every byte XOR 0xFF) of pages read from an image file, which stores
 * pages inverted (file-image.ts). A mount inverts ~5,000 pages (~10 MiB); the JavaScript loop
 * did it at about 2 ns a word, as long as the reads themselves took, and the WebAssembly
 * SIMD routine in invert.wat does it 16 bytes at a time, several times faster. The bytes
 * below are invert.wat assembled by wabt (test/flash-store/invert.test.ts assembles it again
 * and compares, so source and bytes cannot drift apart).
 *
 * Where WebAssembly or its SIMD is unavailable (for example node --jitless), the same
 * contract is kept by the JavaScript loop.
 */

/** invert.wat, assembled (wabt parseWat + toBinary, SIMD enabled). */
export const INVERT_WASM_BASE64 =
  "AGFzbQEAAAABBwFgAn9/AX8CDwEDZW52Bm1lbW9yeQIAAQMCAQAHCgEGaW52ZXJ0AAAKiAEBhQEDAX8CewJ/IAAgAUFwcWohAgJAA0AgACACTw0BIAD9AAQAIQMgBCAD/VAhBCAAIAP9Tf0LBAAgAEEQaiEADAALCyAAIAFBD3FqIQICQANAIAAgAk8NASAALQAAIQUgBiAFciEGIAAgBUH/AXM6AAAgAEEBaiEADAALCyAE/VMgBkEAR3IL";

/** WebAssembly memory comes in pages of this many bytes. */
const WASM_PAGE_BYTES = 65536;

type InvertFn = (offset: number, length: number) => number;

/** The part of the WebAssembly global used here (this project's TypeScript libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** The compiled module, or null where WebAssembly (with SIMD) cannot run it. */
const invertModule: object | null = (() => {
  try {
    return wasm ? new wasm.Module(Buffer.from(INVERT_WASM_BASE64, "base64")) : null;
  } catch {
    return null;
  }
})();

/**
 * A byte buffer whose ranges can be inverted in place. With `native` (the default, when the
 * module compiled) the bytes live in a WebAssembly memory of their own; else in an ordinary
 * buffer inverted by invertBytes. Either way `bytes` is an ordinary Uint8Array the caller
 * may read into (readSync) and copy from.
 */
export class InvertBuffer {
  readonly bytes: Uint8Array;
  private readonly nativeInvert: InvertFn | null;

  constructor(length: number, native = true) {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`buffer length must be a whole number of bytes, got ${length}`);
    if (native && wasm && invertModule) {
      const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(length / WASM_PAGE_BYTES)) });
      const instance = new wasm.Instance(invertModule, { env: { memory } });
      this.nativeInvert = instance.exports["invert"] as InvertFn;
      this.bytes = new Uint8Array(memory.buffer, 0, length);
    } else {
      this.nativeInvert = null;
      this.bytes = new Uint8Array(length);
    }
  }

  /** Whether inversion runs in WebAssembly. */
  get native(): boolean {
    return this.nativeInvert !== null;
  }

  /** Inverts bytes [offset, offset + length) in place; returns whether any of them was non-zero before. */
  invert(offset: number, length: number): boolean {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.bytes.length)) throw new RangeError(`range [${offset}, ${offset + length}) is outside the ${this.bytes.length}-byte buffer`);
    if (this.nativeInvert) return this.nativeInvert(offset, length) !== 0;
    return invertBytes(this.bytes.subarray(offset, offset + length));
  }
}

/**
 * XORs every byte of `buf` with 0xFF in place (words when aligned); returns whether any byte
 * was non-zero before. The reference InvertBuffer's native routine is tested against.
 */
export function invertBytes(buf: Uint8Array): boolean {
  return decodeInto(buf, buf);
}

/**
 * Writes `raw` inverted into `out` (same length; `out` may be `raw`); returns whether any
 * byte of `raw` was non-zero.
 */
export function decodeInto(raw: Uint8Array, out: Uint8Array): boolean {
  let any = 0;
  if (raw.byteOffset % 4 === 0 && out.byteOffset % 4 === 0 && raw.length % 4 === 0) {
    const from = new Int32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    const to = new Int32Array(out.buffer, out.byteOffset, raw.length / 4);
    for (let i = 0; i < from.length; i++) {
      const w = from[i] as number;
      any |= w;
      to[i] = ~w;
    }
    return any !== 0;
  }
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as number;
    any |= v;
    out[i] = v ^ 0xff;
  }
  return any !== 0;
}
