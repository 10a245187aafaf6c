/**
 * RecTable: the store's record index, one row per (type, id) that has a record (a PUT or a
 * tombstone), as parallel typed arrays (struct of arrays) reached through an open-addressing
 * hash on (type, id). A full device has ~200,000 records: a Map of Maps of objects with
 * arrays cost mount ~100 ms of allocation and hashing; rows cost neither.
 *
 * A row holds item handles (item-table.ts), not the items: copy0/copy1 = fragment 0 (or the
 * tombstone) of each copy, mark0/mark1 = the reclaimable mark of each copy. Fragments past 0
 * (records larger than a page: rare) live in a side map of the store.
 *
 * Rows of one type form a doubly-linked list in insertion order, so visiting one type costs
 * only its records (ids(type), the critical-record repair), and iteration order is stable.
 *
 * Hash: linear probing over a power-of-two slot array kept at most half full; deletion shifts
 * the following run back (no tombstone slots, so probes stay short after many deletes). A
 * slot holds the row (4 bytes: the key is compared on the row). The home slot keeps runs of
 * 16 consecutive ids of a type together (16 adjacent slots: one or two cache lines, and rows
 * inserted together, so adjacent too) and scatters the runs: mount inserts ~200,000 mostly
 * consecutive ids, and a fully scattered hash cost a cache miss per insert.
 * Limits: ids are 32-bit, types 8-bit (RECORD_ID_MAX, RECORD_TYPE_MAX in api.ts).
 */
import { allocColumns, releaseColumns, type Columns } from "./columns.ts";
import { NIL } from "./item-table.ts";

const TYPES = 256;
const INITIAL_ROWS = 8;
/** The columns of a record row (one buffer per table: columns.ts). */
const ROW_COLUMNS = {
  type: Uint8Array, id: Uint32Array, kind: Uint8Array, version: Float64Array, length: Uint32Array,
  copy0: Int32Array, copy1: Int32Array, mark0: Int32Array, mark1: Int32Array, prev: Int32Array, next: Int32Array,
} as const;
type RowColumns = Columns<typeof ROW_COLUMNS>;
/** Per record type: first and last row, and how many rows. */
const TYPE_COLUMNS = { typeHead: Int32Array, typeTail: Int32Array, typeCount: Uint32Array } as const;
/**
 * A new table holds nothing (an empty device has no record): its arrays are these shared,
 * zero-length ones until the first insert, so 1000 empty stores cost no table memory.
 */
const NO_ROWS: RowColumns = allocColumns(ROW_COLUMNS, 0);
const NO_TYPES: Columns<typeof TYPE_COLUMNS> = allocColumns(TYPE_COLUMNS, 0);
const NONE_I32 = new Int32Array(0);
/** The hash's slot array (a small one comes from the shared slab too: columns.ts). */
const SLOT_COLUMNS = { slots: Int32Array } as const;
/** At least 32: the home slot takes its low 4 bits from the id and at least one from the hash. */
const INITIAL_SLOTS = 32;
const RUN_BITS = 4;

export class RecTable {
  type = NO_ROWS.type;
  id = NO_ROWS.id;
  /** ITEM_PUT or ITEM_TOMBSTONE; 0 while a row is being built at mount (marks seen, no record yet). */
  kind = NO_ROWS.kind;
  version = NO_ROWS.version;
  /** Value bytes of a PUT. */
  length = NO_ROWS.length;
  copy0 = NO_ROWS.copy0;
  copy1 = NO_ROWS.copy1;
  mark0 = NO_ROWS.mark0;
  mark1 = NO_ROWS.mark1;
  private prev = NO_ROWS.prev;
  private next = NO_ROWS.next;
  /** Per type: first and last row, rows (allocated with the first row). */
  private typeHead = NO_TYPES.typeHead;
  private typeTail = NO_TYPES.typeTail;
  private typeCount = NO_TYPES.typeCount;

  /** Length 0 until the first insert; then a power of two >= INITIAL_SLOTS. */
  private slots = NONE_I32;
  private shift = 0;
  private top = 0;
  private readonly freeRows: number[] = [];
  size = 0;

  /** The row of (type, id), or NIL. */
  find(type: number, id: number): number {
    if (this.size === 0) return NIL;
    const mask = this.slots.length - 1;
    for (let s = this.home(type, id); ; s = (s + 1) & mask) {
      const r = this.slots[s] as number;
      if (r === NIL) return NIL;
      if (this.id[r] === id && this.type[r] === type) return r;
    }
  }

  /** The row of (type, id), created empty (kind 0, no items) when absent. */
  findOrInsert(type: number, id: number): number {
    if (this.slots.length === 0) this.reserve(1);
    const mask = this.slots.length - 1;
    let s = this.home(type, id);
    for (; ; s = (s + 1) & mask) {
      const r = this.slots[s] as number;
      if (r === NIL) break;
      if (this.id[r] === id && this.type[r] === type) return r;
    }
    const r = this.newRow(type, id);
    this.slots[s] = r;
    if (++this.size * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    return r;
  }

  /** Makes room for `n` more records without growing row arrays or rehashing (mount sizes the table once). */
  reserve(n: number): void {
    const rows = this.size + n;
    if (rows > this.type.length) this.resizeRows(Math.max(rows, this.type.length * 2, INITIAL_ROWS));
    let slots = Math.max(this.slots.length, INITIAL_SLOTS);
    while (rows * 2 > slots) slots *= 2;
    if (slots !== this.slots.length) this.rehash(slots);
  }

  /** Removes a row (its items are the caller's business). */
  remove(r: number): void {
    const mask = this.slots.length - 1;
    let s = this.home(this.type[r] as number, this.id[r] as number);
    while (this.slots[s] !== r) {
      if (this.slots[s] === NIL) throw new Error(`flash store invariant violated: record row ${r} is not in the hash`);
      s = (s + 1) & mask;
    }
    // Backward-shift deletion: move later members of the run into the hole when their home allows.
    for (let j = (s + 1) & mask; ; j = (j + 1) & mask) {
      const q = this.slots[j] as number;
      if (q === NIL) break;
      const k = this.home(this.type[q] as number, this.id[q] as number);
      const between = s <= j ? s < k && k <= j : s < k || k <= j; // k cyclically in (s, j]: q stays
      if (between) continue;
      this.slots[s] = q;
      s = j;
    }
    this.slots[s] = NIL;
    this.size--;
    this.unlink(r);
    this.kind[r] = 0;
    this.freeRows.push(r);
  }

  /**
   * Moves a row to the end of its type's list, as if inserted now. Mount creates a row when
   * it first meets a key's mark, but the order of records is that of their first PUT or
   * tombstone (the order iteration, e.g. the repair of critical records, has always had).
   */
  moveToTail(r: number): void {
    const type = this.type[r] as number;
    if (this.typeTail[type] === r) return;
    this.unlink(r);
    this.appendToType(r, type);
  }

  /** Records of `type` (count). */
  countOf(type: number): number {
    return this.typeCount.length ? (this.typeCount[type] as number) : 0;
  }

  /** First row of `type` in insertion order, or NIL; then nextOf(row). */
  firstOf(type: number): number {
    return this.typeHead.length ? (this.typeHead[type] as number) : NIL;
  }

  nextOf(r: number): number {
    return this.next[r] as number;
  }

  /** Rows ever handed out: every row below is in use (in the hash) or on the free list. */
  get rowsEnd(): number {
    return this.top;
  }

  /** Slots of the hash (for tests: load factor). */
  get slotCount(): number {
    return this.slots.length;
  }

  private home(type: number, id: number): number {
    // Fibonacci hashing of (id / 16, type) picks a run of 16 slots; id % 16 the slot in it.
    const run = Math.imul((id >>> RUN_BITS) ^ Math.imul(type, 0x2c1b3c6d), 0x9e3779b1) >>> this.shift;
    return (run << RUN_BITS) | (id & ((1 << RUN_BITS) - 1));
  }

  private newRow(type: number, id: number): number {
    let r = this.freeRows.pop();
    if (r === undefined) {
      if (this.top === this.type.length) this.resizeRows(Math.max(INITIAL_ROWS, this.type.length * 2));
      r = this.top++;
    }
    this.type[r] = type;
    this.id[r] = id;
    this.kind[r] = 0;
    this.version[r] = -1;
    this.length[r] = 0;
    this.copy0[r] = NIL;
    this.copy1[r] = NIL;
    this.mark0[r] = NIL;
    this.mark1[r] = NIL;
    this.appendToType(r, type);
    return r;
  }

  /** Links row r (of `type`, not linked) at the end of its type's list. */
  private appendToType(r: number, type: number): void {
    const tail = this.typeTail[type] as number;
    this.prev[r] = tail;
    this.next[r] = NIL;
    if (tail === NIL) this.typeHead[type] = r;
    else this.next[tail] = r;
    this.typeTail[type] = r;
    (this.typeCount[type] as number)++;
  }

  private unlink(r: number): void {
    const type = this.type[r] as number;
    const p = this.prev[r] as number;
    const n = this.next[r] as number;
    if (p === NIL) this.typeHead[type] = n;
    else this.next[p] = n;
    if (n === NIL) this.typeTail[type] = p;
    else this.prev[n] = p;
    (this.typeCount[type] as number)--;
  }

  private rehash(slotCount: number): void {
    const old = this.slots;
    this.slots = allocColumns(SLOT_COLUMNS, slotCount, undefined, false).slots.fill(NIL);
    this.shift = 32 - (Math.log2(slotCount) - RUN_BITS);
    const mask = slotCount - 1;
    for (let i = 0; i < old.length; i++) {
      const r = old[i] as number;
      if (r === NIL) continue;
      let s = this.home(this.type[r] as number, this.id[r] as number);
      while (this.slots[s] !== NIL) s = (s + 1) & mask;
      this.slots[s] = r;
    }
  }

  /**
   * Empties the table and hands its memory back (columns.ts: releaseColumns) for the next
   * mount. The table is as new afterwards; nothing may still hold one of its arrays.
   */
  release(): void {
    const rows = this.rowColumns();
    const slots = this.slots;
    this.setRows(NO_ROWS);
    this.typeHead = NO_TYPES.typeHead;
    this.typeTail = NO_TYPES.typeTail;
    this.typeCount = NO_TYPES.typeCount;
    this.slots = NONE_I32;
    this.shift = 0;
    this.top = 0;
    this.size = 0;
    this.freeRows.length = 0;
    releaseColumns(rows);
    releaseColumns({ slots });
  }

  private rowColumns(): RowColumns {
    const { type, id, kind, version, length, copy0, copy1, mark0, mark1, prev, next } = this;
    return { type, id, kind, version, length, copy0, copy1, mark0, mark1, prev, next };
  }

  /** New rows are not zeroed (see ItemTable.resize): newRow() writes every field of a row it hands out. */
  private resizeRows(rows: number): void {
    this.setRows(allocColumns(ROW_COLUMNS, rows, this.rowColumns(), false));
    if (this.typeHead.length === 0) {
      const t = allocColumns(TYPE_COLUMNS, TYPES);
      this.typeHead = t.typeHead.fill(NIL);
      this.typeTail = t.typeTail.fill(NIL);
      this.typeCount = t.typeCount;
    }
  }

  private setRows(c: RowColumns): void {
    this.type = c.type;
    this.id = c.id;
    this.kind = c.kind;
    this.version = c.version;
    this.length = c.length;
    this.copy0 = c.copy0;
    this.copy1 = c.copy1;
    this.mark0 = c.mark0;
    this.mark1 = c.mark1;
    this.prev = c.prev;
    this.next = c.next;
  }
}
