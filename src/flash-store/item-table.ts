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

import { allocColumns, releaseColumns, type Columns } from "./columns.ts";

/** "No item": the null handle (also the end of a list). */
export const NIL = -1;
/**
 * Rows of a table's first allocation: an empty store holds a commit or two, and 1000 empty
 * devices must stay small (8 rows are 352 bytes, carved from a shared slab: columns.ts).
 */
const INITIAL_CAPACITY = 8;

/** The columns of an item row (one buffer per table: columns.ts). */
const ITEM_COLUMNS = {
  kind: Uint8Array, flags: Uint8Array, type: Uint8Array, fragIndex: Uint8Array, fragCount: Uint8Array, live: Uint8Array,
  length: Uint16Array, page: Uint16Array, offset: Uint16Array, id: Uint32Array, block: Int32Array, next: Int32Array,
  version: Float64Array, frame: Float64Array,
} as const;
type ItemColumns = Columns<typeof ITEM_COLUMNS>;
/** A table with no rows yet shares these (a mount reserves its size first: no 8-row table to throw away). */
const NO_ROWS: ItemColumns = allocColumns(ITEM_COLUMNS, 0);

export class ItemTable {
  kind = NO_ROWS.kind;
  flags = NO_ROWS.flags;
  type = NO_ROWS.type;
  fragIndex = NO_ROWS.fragIndex;
  fragCount = NO_ROWS.fragCount;
  /** 1 while the item is counted in the live accounting (the store's addLive/dropLive). */
  live = NO_ROWS.live;
  /** Payload bytes (<= a page). */
  length = NO_ROWS.length;
  page = NO_ROWS.page;
  offset = NO_ROWS.offset;
  id = NO_ROWS.id;
  /** Block holding the item, or -1 while staged (not yet programmed) or after its block was erased. */
  block = NO_ROWS.block;
  /** Next item of the same block list (write order), or next free row. */
  next = NO_ROWS.next;
  /** 48-bit counters: exact in a double. */
  version = NO_ROWS.version;
  frame = NO_ROWS.frame;
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

  /** Rows are allocated on first use (alloc or reserve), `capacity` of them at least. */
  constructor(private readonly initialCapacity = INITIAL_CAPACITY) {}

  get capacity(): number {
    return this.kind.length;
  }

  /** A fresh row (fields other than next/live/block are the caller's to set). */
  alloc(): number {
    let h = this.freeHead;
    if (h !== NIL) {
      this.freeHead = this.next[h] as number;
    } else {
      if (this.top === this.capacity) this.resize(Math.max(this.capacity * 2, this.initialCapacity, 1));
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
    if (this.top + n > this.capacity) this.resize(Math.max(this.capacity * 2, this.top + n, this.initialCapacity));
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

  /**
   * Empties the table and hands its memory back (columns.ts: releaseColumns) for the next
   * mount. The table is as new afterwards; nothing may still hold one of its arrays.
   */
  release(): void {
    const columns = this.columns();
    this.setColumns(NO_ROWS);
    releaseColumns(columns);
    this.extras.clear();
    this.top = 0;
    this.size = 0;
    this.freeHead = NIL;
  }

  /**
   * New rows are not zeroed (a reused buffer holds an old table's rows): every field of a row
   * is written when it is handed out, by alloc() and its caller or by a claimRun() caller, and
   * no row at or past `top` is read. Zeroing a full device's table was ~1 ms of each mount.
   */
  private resize(capacity: number): void {
    this.setColumns(allocColumns(ITEM_COLUMNS, capacity, this.columns(), false));
  }

  private setColumns(c: ItemColumns): void {
    this.kind = c.kind;
    this.flags = c.flags;
    this.type = c.type;
    this.fragIndex = c.fragIndex;
    this.fragCount = c.fragCount;
    this.live = c.live;
    this.length = c.length;
    this.page = c.page;
    this.offset = c.offset;
    this.id = c.id;
    this.block = c.block;
    this.next = c.next;
    this.version = c.version;
    this.frame = c.frame;
  }

  private columns(): ItemColumns {
    const { kind, flags, type, fragIndex, fragCount, live, length, page, offset, id, block, next, version, frame } = this;
    return { kind, flags, type, fragIndex, fragCount, live, length, page, offset, id, block, next, version, frame };
  }
}
