/**
 * Columns of a struct-of-arrays table laid out in ONE buffer. Why: every typed array created
 * with its own buffer is a separate backing store for V8 to allocate, zero and track, and a
 * campaign mounts a small store per cut point: its three tables were ~40 such allocations, a
 * sixth of a mount. Small tables take their buffer from a shared slab (slab.ts), large ones
 * get their own; the columns are views into it.
 *
 * Layout: columns in order of decreasing element size (8, 4, 2, 1 bytes), each `rows`
 * elements long, so every column starts aligned for its element type.
 */

import { Slab, SLAB_BYTES, SLAB_PIECE_DIVISOR } from "./slab.ts";

export type ColumnArray = Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;
type ColumnCtor = Float64ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor | Uint16ArrayConstructor | Uint8ArrayConstructor;

const zeroed = new Slab(0);

/** Element sizes a layout may use, largest first (the order columns are laid out in). */
const ELEMENT_SIZES = [8, 4, 2, 1] as const;

/** A table's columns: name -> element type. */
export type ColumnSpec = Readonly<Record<string, ColumnCtor>>;

export type Columns<S extends ColumnSpec> = { [K in keyof S]: InstanceType<S[K]> };

/** A typed view; one constructor call site per type, so each stays monomorphic (mount makes ~30 of these). */
function view(ctor: ColumnCtor, buffer: ArrayBuffer, at: number, rows: number): ColumnArray {
  switch (ctor) {
    case Float64Array: return new Float64Array(buffer, at, rows);
    case Int32Array: return new Int32Array(buffer, at, rows);
    case Uint32Array: return new Uint32Array(buffer, at, rows);
    case Uint16Array: return new Uint16Array(buffer, at, rows);
    case Uint8Array: return new Uint8Array(buffer, at, rows);
    default: throw new TypeError(`not a column type: ${String(ctor)}`);
  }
}

/** A spec's columns in layout order (largest elements first), computed once per spec. */
const layouts = new WeakMap<ColumnSpec, readonly (readonly [string, ColumnCtor])[]>();

function layoutOf(spec: ColumnSpec): readonly (readonly [string, ColumnCtor])[] {
  let layout = layouts.get(spec);
  if (!layout) {
    layout = ELEMENT_SIZES.flatMap((size) => Object.entries(spec).filter(([, ctor]) => ctor.BYTES_PER_ELEMENT === size));
    layouts.set(spec, layout);
  }
  return layout;
}

/**
 * Spare memory for large tables: the buffers of unmounted stores' tables, kept for the next
 * mount, as a firmware keeps its index in static RAM. Why: a full device's tables are ~20 MB;
 * fresh from the allocator, that memory is new to the process about every other mount, and
 * this machine spent 25-35 ms of kernel time per mount faulting its ~4,000 pages in (measured:
 * `minorPageFault` and system CPU per mount), more than the mount itself.
 *
 * Invariants: a buffer is here only after every view of it was dropped (release is the
 * owner's last act on its table); only buffers made by allocColumns for one table (never a
 * slab) come here; a buffer is handed out to one table at a time, zeroed as a fresh one is.
 */
const SPARE_BYTES_MAX = 64 * 1024 * 1024;
/** A spare serves a request of at least this fraction of its size (no big buffer pinned by a small table). */
const SPARE_FIT_DIVISOR = 2;
const ownBuffers = new WeakSet<ArrayBuffer>();
const spares: ArrayBuffer[] = [];
let spareBytes = 0;

/** A buffer of at least `bytes` bytes (zeroed, unless `zero` is false): the best-fitting spare, else a fresh one. */
function tableBuffer(bytes: number, zero = true): ArrayBuffer {
  let best = -1;
  for (let i = 0; i < spares.length; i++) {
    const size = (spares[i] as ArrayBuffer).byteLength;
    if (size >= bytes && size <= bytes * SPARE_FIT_DIVISOR && (best < 0 || size < (spares[best] as ArrayBuffer).byteLength)) best = i;
  }
  if (best < 0) {
    const fresh = new ArrayBuffer(bytes);
    ownBuffers.add(fresh);
    return fresh;
  }
  const buffer = spares.splice(best, 1)[0] as ArrayBuffer;
  spareBytes -= buffer.byteLength;
  if (zero) new Uint8Array(buffer, 0, bytes).fill(0);
  return buffer;
}

/**
 * Hands a table's memory back for reuse (its owner drops every view of it now). Columns
 * carved from a shared slab are left alone; spares past SPARE_BYTES_MAX are left to the GC.
 */
export function releaseColumns(columns: Readonly<Record<string, ColumnArray>>): void {
  for (const name in columns) {
    const buffer = (columns[name] as ColumnArray).buffer as ArrayBuffer;
    if (!ownBuffers.has(buffer) || spares.includes(buffer)) return;
    if (spareBytes + buffer.byteLength > SPARE_BYTES_MAX) return;
    spares.push(buffer);
    spareBytes += buffer.byteLength;
    return; // every column of a table shares its one buffer
  }
}

/** Bytes of table memory kept for the next mount (for tests). */
export function spareTableBytes(): number {
  return spareBytes;
}

const SCRATCH_COLUMNS = { bytes: Uint8Array } as const;

/**
 * `bytes` bytes of scratch memory with ANY content (the caller writes before it reads): a
 * one-column table that is not zeroed; hand it back with releaseColumns({ bytes }).
 */
export function scratchBytes(bytes: number): Uint8Array {
  return allocColumns(SCRATCH_COLUMNS, bytes, undefined, false).bytes;
}

/**
 * New columns of `rows` elements each, in one buffer, zero-filled (unless `zero` is false: a
 * caller that fills every element itself, e.g. a hash's slots with NIL); when `from` is given
 * its columns' first elements are copied over (growth: from.length <= rows).
 */
export function allocColumns<S extends ColumnSpec>(spec: S, rows: number, from?: Columns<S>, zero = true): Columns<S> {
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`column rows must be a non-negative integer, got ${rows}`);
  const layout = layoutOf(spec);
  let bytes = 0;
  for (const [, ctor] of layout) bytes += ctor.BYTES_PER_ELEMENT * rows;
  const piece = bytes > SLAB_BYTES / SLAB_PIECE_DIVISOR ? new Uint8Array(tableBuffer(bytes, zero), 0, bytes) : zeroed.carve(bytes);
  const buffer = piece.buffer as ArrayBuffer;
  const out = {} as Record<string, ColumnArray>;
  let at = piece.byteOffset;
  for (const [name, ctor] of layout) {
    const column = view(ctor, buffer, at, rows);
    if (from) column.set(from[name] as never);
    out[name] = column;
    at += ctor.BYTES_PER_ELEMENT * rows;
  }
  return out as Columns<S>;
}
