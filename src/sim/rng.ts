/**
 * The one seeded PRNG of a run. Everything random below src/cli draws from an `Rng`
 * handed down from the run's seed, so a seed replays a run exactly.
 *
 * Generator: sfc32 (Small Fast Counting, 128-bit state), seeded through splitmix32.
 * It is fast, passes PractRand to 2^40+ and needs no BigInt.
 */

const UINT32_RANGE = 0x1_0000_0000;

function splitmix32(state: number): [next: number, output: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** Hash a label into 32 bits (FNV-1a) so forks are named, not numbered by call order. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export type Seed = number;

/** Largest seed accepted: seeds are printed and typed back by people, so keep them exact. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export function parseSeed(text: string): Seed {
  if (!/^\d{1,16}$/.test(text)) throw new RangeError(`seed must be a non-negative integer, got "${text}"`);
  const seed = Number(text);
  if (seed > MAX_SEED) throw new RangeError(`seed must be at most ${MAX_SEED}, got ${text}`);
  return seed;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  readonly seed: Seed;

  constructor(seed: Seed, salt = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a safe non-negative integer, got ${seed}`);
    this.seed = seed;
    let s = (seed % UINT32_RANGE) ^ salt;
    const high = Math.floor(seed / UINT32_RANGE);
    let out: number;
    [s, out] = splitmix32(s ^ Math.imul(high, 0x27d4eb2f));
    this.a = out;
    [s, out] = splitmix32(s);
    this.b = out;
    [s, out] = splitmix32(s);
    this.c = out;
    [s, out] = splitmix32(s);
    this.d = out;
    for (let i = 0; i < 12; i++) this.nextU32(); // stir, as sfc32's authors advise
  }

  /** An independent stream named by `label`; the same seed and label always give the same stream. */
  fork(label: string): Rng {
    return new Rng(this.seed, hashLabel(label) ^ this.nextU32());
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.nextU32() / UINT32_RANGE;
  }

  /** Uniform integer in [0, bound), without modulo bias. */
  int(bound: number): number {
    if (!Number.isInteger(bound) || bound <= 0 || bound > UINT32_RANGE) throw new RangeError(`bound out of range: ${bound}`);
    const limit = UINT32_RANGE - (UINT32_RANGE % bound);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % bound;
    }
  }

  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  bool(probability = 0.5): boolean {
    return this.float() < probability;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      let x = this.nextU32();
      for (let j = 0; j < 4 && i + j < length; j++) {
        out[i + j] = x & 0xff;
        x >>>= 8;
      }
    }
    return out;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(items.length)] as T;
  }
}
