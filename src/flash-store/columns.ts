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

import { Slab } from "./slab.ts";

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
 * New columns of `rows` elements each, in one buffer, zero-filled; when `from` is given its
 * columns' first elements are copied over (growth: from.length <= rows).
 */
export function allocColumns<S extends ColumnSpec>(spec: S, rows: number, from?: Columns<S>): Columns<S> {
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`column rows must be a non-negative integer, got ${rows}`);
  const layout = layoutOf(spec);
  let bytes = 0;
  for (const [, ctor] of layout) bytes += ctor.BYTES_PER_ELEMENT * rows;
  const piece = zeroed.carve(bytes);
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
