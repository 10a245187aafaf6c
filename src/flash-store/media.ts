/**
 * Media: where a NandChip keeps its cells. The chip (nand.ts) enforces the NAND rules and
 * injects faults; a Media only stores what the chip decided. Two backends:
 *   - MemoryMedia (here): sparse and copy-on-write. A block costs nothing until a page of
 *     it is programmed; a page is stored trimmed of its trailing 0xFF bytes; programmed
 *     pages are immutable, so a snapshot shares them and copies only pointer arrays.
 *   - FileMedia (file-image.ts): a persistent image file.
 */
import type { Geometry } from "./geometry.ts";

export interface Media {
  readonly geometry: Geometry;
  /**
   * Raw page content (data + spare, trimmed of trailing 0xFF: bytes past its end read 0xFF),
   * or null when the page is erased. Callers must not modify it.
   * `into` (exactly pageBytes + spareBytes long, the caller's to reuse): a media that must
   * produce the bytes anyway (a file) may write the page there and return `into`, and the
   * caller must then not keep the result past its next use of `into`. A media that holds
   * immutable pages (memory) returns those. Why: a mount reads ~5,000 pages once each; a
   * fresh buffer for each was memory new to the process at every mount of a file image.
   */
  readPage(block: number, page: number, into?: Uint8Array): Uint8Array | null;
  /**
   * Stores a page; `content` is the full page (data + spare). With `handOver` the caller gives
   * the buffer away (a fresh one it never touches again), so the media may keep it uncopied.
   */
  writePage(block: number, page: number, content: Uint8Array, handOver?: boolean): void;
  /** Every page of the block becomes 0xFF. */
  eraseBlock(block: number): void;
  eraseCount(block: number): number;
  setEraseCount(block: number, count: number): void;
  /** Next page the program-order rule allows (0 after an erase). */
  writePointer(block: number): number;
  setWritePointer(block: number, page: number): void;
  /** Physical block flags (BLOCK_FLAG_*): set at manufacture, never by the store. */
  blockFlags(block: number): number;
  setBlockFlags(block: number, flags: number): void;
  /** The MCU secure area (not NAND): SECURE_AREA_BYTES of OTP-like storage for device secrets. */
  readSecure(): Uint8Array;
  writeSecure(offset: number, data: Uint8Array): void;
  /** Released when the chip is closed (file handles). */
  close(): void;
}

/** Size of the MCU secure area kept beside the NAND (models the secure MCU's internal OTP/fuses). */
export const SECURE_AREA_BYTES = 4096;

export function checkSecureWrite(offset: number, data: Uint8Array): void {
  if (!(data instanceof Uint8Array)) throw new RangeError("secure area data must be a Uint8Array");
  if (!Number.isInteger(offset) || offset < 0 || offset + data.length > SECURE_AREA_BYTES) {
    throw new RangeError(`secure area write out of range: offset ${offset} + ${data.length} bytes > ${SECURE_AREA_BYTES}`);
  }
}

/**
 * Drops trailing 0xFF bytes: erased cells cost nothing in memory. A copy, unless `handOver`
 * (the caller's fresh buffer is kept as a view: one allocation less per page written).
 */
export function trimErased(content: Uint8Array, handOver = false): Uint8Array {
  let end = content.length;
  while (end > 0 && content[end - 1] === 0xff) end--;
  return handOver ? content.subarray(0, end) : content.slice(0, end);
}

/** The block is factory-bad: program and erase on it report failure. */
export const BLOCK_FLAG_FACTORY_BAD = 1;

const NO_PAGES: readonly (Uint8Array | null)[] = Object.freeze([]);

/** What a memory chip's snapshot holds: immutable, shareable by any number of forks. */
export interface MemorySnapshot {
  readonly geometry: Geometry;
  readonly pages: readonly (readonly (Uint8Array | null)[])[];
  readonly eraseCounts: Uint32Array;
  readonly writePointers: Uint16Array;
  readonly flags: Uint8Array;
  readonly secure: Uint8Array | null;
}

export class MemoryMedia implements Media {
  /**
   * pages[block][page]: trimmed content or null (erased). Invariant: the inner arrays and
   * the Uint8Arrays in them are never mutated once stored (copy-on-write), so snapshots
   * may share them.
   */
  private pages: (readonly (Uint8Array | null)[])[];
  private eraseCounts: Uint32Array;
  private writePointers: Uint16Array;
  private flags: Uint8Array;
  private secure: Uint8Array | null;

  /**
   * True while the arrays above are shared with a snapshot: the first write copies them
   * (O(blocks) pointers, once), so snapshot() and fork() themselves are O(1). The secure area
   * has its own flag: the store never writes it, so a fork need not copy its 4 KiB.
   */
  private shared = false;
  private secureShared = false;

  constructor(readonly geometry: Geometry, from?: MemorySnapshot) {
    if (from) {
      this.pages = from.pages as (readonly (Uint8Array | null)[])[];
      this.eraseCounts = from.eraseCounts;
      this.writePointers = from.writePointers;
      this.flags = from.flags;
      this.secure = from.secure;
      this.shared = true;
      this.secureShared = true;
    } else {
      this.pages = new Array<readonly (Uint8Array | null)[]>(geometry.blocks).fill(NO_PAGES);
      this.eraseCounts = new Uint32Array(geometry.blocks);
      this.writePointers = new Uint16Array(geometry.blocks);
      this.flags = new Uint8Array(geometry.blocks);
      this.secure = null;
    }
  }

  readPage(block: number, page: number): Uint8Array | null {
    return (this.pages[block] as readonly (Uint8Array | null)[])[page] ?? null;
  }

  writePage(block: number, page: number, content: Uint8Array, handOver = false): void {
    this.own();
    const next = (this.pages[block] as readonly (Uint8Array | null)[]).slice();
    while (next.length < page) next.push(null);
    next[page] = trimErased(content, handOver);
    this.pages[block] = next;
  }

  eraseBlock(block: number): void {
    this.own();
    this.pages[block] = NO_PAGES;
  }

  eraseCount(block: number): number {
    return this.eraseCounts[block] as number;
  }

  setEraseCount(block: number, count: number): void {
    this.own();
    this.eraseCounts[block] = count;
  }

  writePointer(block: number): number {
    return this.writePointers[block] as number;
  }

  setWritePointer(block: number, page: number): void {
    this.own();
    this.writePointers[block] = page;
  }

  blockFlags(block: number): number {
    return this.flags[block] as number;
  }

  setBlockFlags(block: number, flags: number): void {
    this.own();
    this.flags[block] = flags;
  }

  readSecure(): Uint8Array {
    return this.secure ? this.secure.slice() : new Uint8Array(SECURE_AREA_BYTES);
  }

  writeSecure(offset: number, data: Uint8Array): void {
    checkSecureWrite(offset, data);
    if (this.secureShared) {
      this.secure = this.secure ? this.secure.slice() : null;
      this.secureShared = false;
    }
    this.secure ??= new Uint8Array(SECURE_AREA_BYTES);
    this.secure.set(data, offset);
  }

  /** O(1): the snapshot shares this media's arrays; whichever side writes next copies them. */
  snapshot(): MemorySnapshot {
    this.shared = true;
    this.secureShared = true;
    return { geometry: this.geometry, pages: this.pages, eraseCounts: this.eraseCounts, writePointers: this.writePointers, flags: this.flags, secure: this.secure };
  }

  /**
   * True when nothing was written since `snap` was taken of this media: every array is still
   * the one the snapshot shares (a write copies them first). O(1); false after any write, even
   * one that put back what was there.
   */
  unchangedSince(snap: MemorySnapshot): boolean {
    return this.pages === snap.pages && this.eraseCounts === snap.eraseCounts && this.writePointers === snap.writePointers && this.flags === snap.flags && this.secure === snap.secure;
  }

  /** Copy-on-write of the per-block arrays (page contents are immutable and stay shared). */
  private own(): void {
    if (!this.shared) return;
    this.pages = this.pages.slice();
    this.eraseCounts = this.eraseCounts.slice();
    this.writePointers = this.writePointers.slice();
    this.flags = this.flags.slice();
    this.shared = false;
  }

  close(): void {}
}
