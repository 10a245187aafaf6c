/**
 * ItemTable: every item the store knows of (on flash, or staged for the page being filled),
 * as parallel typed arrays indexed by an integer *handle* (struct of arrays). A full 128 MiB
 * device holds ~200,000 items: one object per item cost mount most of its time (allocation,
 * then garbage collection); rows in typed arrays cost neither, and ~50 B per item.
 *
 * Handles are reused: free() puts a row on a free list that alloc() takes first. The store
 * frees a row only when nothing refers to it any more (its block was erased and it is neither
 * live nor a commit the index still names), so a handle never silently changes meaning.
 *
 * The arrays are replaced when the table grows (doubling): never keep a reference to one
 * across a call that may allocate.
 */

/** "No item": the null handle (also the end of a list). */
export const NIL = -1;
/**
 * Rows of a new table: an empty store holds a commit or two, and 1000 empty devices must stay
 * small; 8 rows keep even the Float64Arrays at 64 bytes, which V8 stores on its heap (no
 * separate backing store per array).
 */
const INITIAL_CAPACITY = 8;

export class ItemTable {
  kind = new Uint8Array(0);
  flags = new Uint8Array(0);
  type = new Uint8Array(0);
  fragIndex = new Uint8Array(0);
  fragCount = new Uint8Array(0);
  /** 1 while the item is counted in the live accounting (the store's addLive/dropLive). */
  live = new Uint8Array(0);
  /** Payload bytes (<= a page). */
  length = new Uint16Array(0);
  page = new Uint16Array(0);
  offset = new Uint16Array(0);
  id = new Uint32Array(0);
  /** Block holding the item, or -1 while staged (not yet programmed) or after its block was erased. */
  block = new Int32Array(0);
  /** Next item of the same block list (write order), or next free row. */
  next = new Int32Array(0);
  /** 48-bit counters: exact in a double. */
  version = new Float64Array(0);
  frame = new Float64Array(0);
  /**
   * Commit items: the reclaimed-record total of their payload, by handle. A map, not a
   * column: commits are ~1 item in 60 of a full device, a column cost 8 bytes on every row.
   */
  private readonly extras = new Map<number, number>();

  /** Rows ever handed out (handles are < top). */
  top = 0;
  /** Rows in use (top less the free list). */
  size = 0;
  private freeHead = NIL;

  constructor(capacity = INITIAL_CAPACITY) {
    this.resize(Math.max(1, capacity));
  }

  get capacity(): number {
    return this.kind.length;
  }

  /** A fresh row (fields other than next/live/block are the caller's to set). */
  alloc(): number {
    let h = this.freeHead;
    if (h !== NIL) {
      this.freeHead = this.next[h] as number;
    } else {
      if (this.top === this.capacity) this.resize(this.capacity * 2);
      h = this.top++;
    }
    this.size++;
    this.next[h] = NIL;
    this.live[h] = 0;
    this.block[h] = -1;
    return h;
  }

  /** Makes sure the next `n` alloc() calls do not grow the table (so callers may hold the arrays). */
  reserve(n: number): void {
    if (this.top + n > this.capacity) this.resize(Math.max(this.capacity * 2, this.top + n));
  }

  /**
   * Takes the `n` rows from top as one run (bulk load: mount decodes a summary page into
   * consecutive rows). The caller has written every field of rows top..top+n-1, next, live
   * and block included; room must have been reserved.
   */
  claimRun(n: number): number {
    if (this.top + n > this.capacity) throw new Error(`flash store invariant violated: item run of ${n} rows past the reserved capacity`);
    const base = this.top;
    this.top += n;
    this.size += n;
    return base;
  }

  /** A commit's reclaimed-record total (0 for other items). */
  extraOf(h: number): number {
    return this.extras.get(h) ?? 0;
  }

  setExtra(h: number, value: number): void {
    if (value === 0) this.extras.delete(h);
    else this.extras.set(h, value);
  }

  /** Returns a row to the free list; the handle must not be used afterwards. */
  free(h: number): void {
    this.extras.delete(h);
    this.kind[h] = 0; // kind 0 is no item kind: a stale handle reads as "no item" on flash too
    this.live[h] = 0;
    this.block[h] = -1;
    this.next[h] = this.freeHead;
    this.freeHead = h;
    this.size--;
  }

  /** Rows on the free list (for invariant checks). */
  freeRows(): number {
    return this.top - this.size;
  }

  private resize(capacity: number): void {
    this.kind = grow(this.kind, new Uint8Array(capacity));
    this.flags = grow(this.flags, new Uint8Array(capacity));
    this.type = grow(this.type, new Uint8Array(capacity));
    this.fragIndex = grow(this.fragIndex, new Uint8Array(capacity));
    this.fragCount = grow(this.fragCount, new Uint8Array(capacity));
    this.live = grow(this.live, new Uint8Array(capacity));
    this.length = grow(this.length, new Uint16Array(capacity));
    this.page = grow(this.page, new Uint16Array(capacity));
    this.offset = grow(this.offset, new Uint16Array(capacity));
    this.id = grow(this.id, new Uint32Array(capacity));
    this.block = grow(this.block, new Int32Array(capacity));
    this.next = grow(this.next, new Int32Array(capacity));
    this.version = grow(this.version, new Float64Array(capacity));
    this.frame = grow(this.frame, new Float64Array(capacity));
  }
}

function grow<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(old: T, neo: T): T {
  neo.set(old as never);
  return neo;
}
