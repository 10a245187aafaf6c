/**
 * Byte writer and reader for the canonical encodings: big-endian integers, u16-length-
 * prefixed UTF-8 text and byte strings. The reader throws `DecodeError` on anything
 * malformed (truncation, bad UTF-8, oversize), never a RangeError from deep inside.
 */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

const utf8 = new TextEncoder();
/**
 * Strict (bad UTF-8 is an error) and lossless: a leading EF BB BF stays a U+FEFF character
 * instead of being dropped, so decoding then encoding gives back the same bytes and one
 * value has exactly one encoding.
 */
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;

const INITIAL_WRITER_BYTES = 1024;
/** Larger backing buffers are left to the GC rather than kept for the next writer. */
const MAX_SPARE_WRITER_BYTES = 64 * 1024;
/**
 * A finished writer's backing buffer, handed to the next writer: encodings run one after
 * another on the hot paths (an issue encodes several records), so most writers reuse it
 * instead of allocating (and zeroing) a fresh 1 KiB buffer each.
 */
let spareBuffer: Uint8Array | undefined;

function takeBuffer(): Uint8Array {
  const buf = spareBuffer ?? new Uint8Array(INITIAL_WRITER_BYTES);
  spareBuffer = undefined;
  return buf;
}

export class ByteWriter {
  private buf = takeBuffer();
  private len = 0;
  /** The backing buffer went back to the spare slot at finish() and `buf` is the array finish() returned; copy before writing again. */
  private released = false;

  private ensure(n: number): void {
    if (this.released) {
      const copy = new Uint8Array(Math.max(this.len + n, INITIAL_WRITER_BYTES));
      copy.set(this.buf.subarray(0, this.len));
      this.buf = copy;
      this.released = false;
    }
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.ensure(1);
    this.buf[this.len++] = v;
    return this;
  }
  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > U16_MAX) throw new RangeError(`u16 out of range: ${v}`);
    this.ensure(2);
    this.buf[this.len++] = v >>> 8;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new RangeError(`u32 out of range: ${v}`);
    this.ensure(4);
    this.buf[this.len++] = v >>> 24;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  /** Unsigned 64-bit big-endian from a safe integer (money in fen, milli-quantities). */
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 must be a safe non-negative integer: ${v}`);
    this.u32(Math.floor(v / 0x1_0000_0000));
    return this.u32(v % 0x1_0000_0000);
  }
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  bytes(b: Uint8Array): this {
    if (b.length > U16_MAX) throw new RangeError(`byte string longer than ${U16_MAX}`);
    return this.u16(b.length).raw(b);
  }
  text(s: string): this {
    return this.bytes(utf8.encode(s));
  }
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    if (!this.released && this.buf.length <= MAX_SPARE_WRITER_BYTES) {
      spareBuffer = this.buf;
      // Keep going from the returned bytes (copied before any further write).
      this.buf = out;
      this.released = true;
    }
    return out;
  }
}

export class ByteReader {
  private pos = 0;
  constructor(private readonly b: Uint8Array, private readonly what = "data") {}

  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new DecodeError(`${this.what}: truncated at byte ${this.pos} (need ${n} more)`);
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++] as number;
  }
  u16(): number {
    this.need(2);
    const v = ((this.b[this.pos] as number) << 8) | (this.b[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = ((this.b[this.pos] as number) * 0x100_0000) + (((this.b[this.pos + 1] as number) << 16) | ((this.b[this.pos + 2] as number) << 8) | (this.b[this.pos + 3] as number));
    this.pos += 4;
    return v;
  }
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    const v = hi * 0x1_0000_0000 + lo;
    if (!Number.isSafeInteger(v)) throw new DecodeError(`${this.what}: 64-bit value beyond 2^53 at byte ${this.pos - 8}`);
    return v;
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  bytes(max = U16_MAX): Uint8Array {
    const n = this.u16();
    if (n > max) throw new DecodeError(`${this.what}: field of ${n} bytes exceeds ${max}`);
    return this.raw(n);
  }
  text(maxBytes = U16_MAX): string {
    const b = this.bytes(maxBytes);
    try {
      return utf8Strict.decode(b);
    } catch {
      throw new DecodeError(`${this.what}: invalid UTF-8 at byte ${this.pos - b.length}`);
    }
  }
  get remaining(): number {
    return this.b.length - this.pos;
  }
  get offset(): number {
    return this.pos;
  }
  end(): void {
    if (this.pos !== this.b.length) throw new DecodeError(`${this.what}: ${this.b.length - this.pos} trailing bytes`);
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const asciiBytes = (s: string): Uint8Array => utf8.encode(s);
export const utf8Bytes = (s: string): Uint8Array => utf8.encode(s);
