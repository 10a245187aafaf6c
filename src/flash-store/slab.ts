/**
 * Small buffers carved from shared slabs. Why: every ArrayBuffer is a separate backing store
 * that V8 allocates, fills and tracks as external memory (about half a microsecond each on
 * this machine, plus the scavenger's sweeping), while a view into an existing buffer costs
 * ~40 ns. Mount reads dozens of pages and builds three small tables per campaign cut point:
 * as fresh buffers that was a sixth of a cut. A slab lives while any piece cut from it does,
 * so slabs are kept small (SLAB_BYTES bounds what one retained piece can pin), and requests
 * larger than a quarter slab get a buffer of their own.
 *
 * Pieces are never reused (a bump allocator), so each is independent and starts at the
 * slab's fill byte; they are 8-byte aligned, so any typed array may be laid over one.
 */
export const SLAB_BYTES = 64 * 1024;
/** Requests above SLAB_BYTES / SLAB_PIECE_DIVISOR get a buffer of their own. */
export const SLAB_PIECE_DIVISOR = 4;
const PIECE_ALIGN = 8;

export class Slab {
  private slab: Uint8Array;
  private used = 0;

  /** `fill`: the value every byte of a new piece has (0 for tables, 0xFF for erased cells). */
  constructor(private readonly fill: number) {
    this.slab = this.fresh(SLAB_BYTES);
  }

  /** A fresh piece of `bytes` bytes, each equal to the slab's fill byte. */
  carve(bytes: number): Uint8Array {
    if (bytes > SLAB_BYTES / SLAB_PIECE_DIVISOR) return this.fresh(bytes);
    if (this.used + bytes > SLAB_BYTES) {
      this.slab = this.fresh(SLAB_BYTES);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + bytes);
    this.used += (bytes + PIECE_ALIGN - 1) & ~(PIECE_ALIGN - 1);
    return out;
  }

  private fresh(bytes: number): Uint8Array {
    const buffer = new Uint8Array(bytes);
    return this.fill === 0 ? buffer : buffer.fill(this.fill);
  }
}
