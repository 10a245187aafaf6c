/**
 * FileMedia: a NAND image in one file, so a virtual Ukey keeps its flash across restarts.
 *
 * Layout (big-endian; docs/flash-format.md "Image file"):
 *   [0, 4096)            image header: magic "UKEYNAND", version, geometry, endurance, offsets, CRC-32
 *   [4096, 8192)         MCU secure area (4 KiB, not NAND; never printed by inspect)
 *   [8192, dataOffset)   block table: per block u32 erase count, u16 write pointer, u8 flags, u8 0
 *   [dataOffset, end)    pages, block-major, each pageBytes + spareBytes, stored INVERTED
 *                        (byte XOR 0xFF) so a never-written hole of a sparse file reads as erased.
 *
 * Crash safety at the level of one chip operation: each operation is at most two pwrite
 * or three pwrite calls, ordered so that a process killed between them leaves a state a
 * power cut could have left: program writes the block table (write pointer) first, then the
 * page; erase writes the table (count + 1) first, then the erased cells, then the pointer 0.
 * A kill inside a write leaves some of its bytes written: a subset of the intended changes.
 */
import { acquireImageLock, releaseImageLock } from "./image-lock.ts";
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { StoreError } from "./api.ts";
import { crc32 } from "./crc32.ts";
import { InvertBuffer, invertBytes } from "./invert.ts";
import { checkGeometry, DEFAULT_GEOMETRY, describeGeometry, pageTotalBytes, sameGeometry, type Geometry } from "./geometry.ts";
import { readU16, readU32, writeU16, writeU32 } from "./layout.ts";
import { checkSecureWrite, SECURE_AREA_BYTES, type Media } from "./media.ts";
import { Slab } from "./slab.ts";
import { ENDURANCE_CYCLES, NandChip } from "./nand.ts";

export const IMAGE_MAGIC = "UKEYNAND";
export const IMAGE_VERSION = 1;
export const IMAGE_HEADER_BYTES = 4096;
export const IMAGE_SECURE_OFFSET = 4096;
export const IMAGE_TABLE_OFFSET = 8192;
export const IMAGE_TABLE_ENTRY_BYTES = 8;
const ALIGN = 4096;
/** Most pages a read of a block's last page fetches (its tail: a full block's summary pages fit in it). */
export const TAIL_READ_AHEAD_PAGES = 8;
/** Pages a run of in-order reads (page p right after page p - 1 of one block) fetches at once: a mount scans a block that has no summary page by page. */
const SEQUENTIAL_READ_AHEAD_PAGES = TAIL_READ_AHEAD_PAGES + 1;
/** Pages the read-ahead buffer holds: a tail and the next block's page 0, or a sequential run. */
const AHEAD_PAGES_MAX = Math.max(TAIL_READ_AHEAD_PAGES + 1, SEQUENTIAL_READ_AHEAD_PAGES);

export const IH_MAGIC = 0;
export const IH_VERSION = 8;
export const IH_PAGE_BYTES = 12;
export const IH_SPARE_BYTES = 16;
export const IH_PAGES_PER_BLOCK = 20;
export const IH_BLOCKS = 24;
export const IH_ENDURANCE = 28;
export const IH_SECURE_OFFSET = 32;
export const IH_SECURE_BYTES = 36;
export const IH_TABLE_OFFSET = 40;
export const IH_DATA_OFFSET = 44;
export const IH_CRC = 60;
export const IMAGE_HEADER_USED = 64;

/** Decoded pages handed out by readPage: pieces of shared slabs (slab.ts), every byte written over. */
const pagePieces = new Slab(0);

const TE_ERASE_COUNT = 0;
const TE_WRITE_POINTER = 4;
const TE_FLAGS = 6;

function dataOffsetFor(g: Geometry): number {
  return IMAGE_TABLE_OFFSET + Math.ceil((g.blocks * IMAGE_TABLE_ENTRY_BYTES) / ALIGN) * ALIGN;
}

export function imageBytes(g: Geometry): number {
  return dataOffsetFor(g) + g.blocks * g.pagesPerBlock * pageTotalBytes(g);
}

export interface ImageOptions {
  geometry?: Geometry;
  endurance?: number;
  factoryBadBlocks?: readonly number[];
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean;
  /** fsync after every operation (slow; survives an OS crash, not only a process kill). */
  durable?: boolean;
}

export class FileMedia implements Media {
  private readonly table: Uint8Array;
  private readonly pageTotal: number;
  private readonly dataOffset: number;
  private readonly erasedBlock: Uint8Array;
  private fd: number;
  /**
   * The last read-ahead (see readPage): `aheadCount` consecutive pages of the file from global
   * page index `aheadFirst` (block * pagesPerBlock + page), decoded in place as soon as read
   * (invert.ts), in this media's one read-ahead buffer; `aheadWritten[i]` says whether page i
   * held data (else it is erased). Every read-ahead reuses the buffer and it is never handed
   * out: a caller gets a copy of just the page it asked for. Why: a mount reads ~10 MiB of
   * tails, and a fresh buffer per block (kept alive by the pages handed out of it) was memory
   * new to the process at every mount, which this machine paid for in page faults.
   */
  private ahead: InvertBuffer | null = null;
  private readonly aheadWritten = new Uint8Array(AHEAD_PAGES_MAX);
  private aheadFirst = 0;
  private aheadCount = 0;
  /**
   * Tail pages the next read-ahead fetches: what the last read-ahead's block turned out to
   * need (`tailUsed`: its last page back to the earliest page asked of it). A mount reads
   * blocks alike, so it copies ~6 pages per block out of the kernel, not 9; a block that
   * needs more costs a read per page it lacks.
   */
  private tailPages = TAIL_READ_AHEAD_PAGES;
  private tailBlock = -1;
  private tailUsed = 0;
  /** The page that would continue the last run of in-order reads (global index), or -1. */
  private sequentialNext = -1;
  private constructor(readonly path: string, fd: number, readonly geometry: Geometry, readonly endurance: number, private readonly durable: boolean) {
    this.fd = fd;
    this.pageTotal = pageTotalBytes(geometry);
    this.dataOffset = dataOffsetFor(geometry);
    this.table = new Uint8Array(geometry.blocks * IMAGE_TABLE_ENTRY_BYTES);
    readFully(fd, this.table, IMAGE_TABLE_OFFSET);
    this.erasedBlock = new Uint8Array(geometry.pagesPerBlock * this.pageTotal); // zeros = erased (inverted)
  }

  /** Creates a new image file (sparse: an empty 128 MiB device uses a few KiB of disk). */
  static create(path: string, options: ImageOptions = {}): FileMedia {
    const g = options.geometry ?? DEFAULT_GEOMETRY;
    checkGeometry(g);
    const endurance = options.endurance ?? ENDURANCE_CYCLES;
    if (!options.overwrite && existsSync(path)) throw new StoreError("BAD_IMAGE", `image ${path} already exists (pass overwrite to replace it)`);
    const fd = openLocked(path, "w+");
    try {
      const header = new Uint8Array(IMAGE_HEADER_BYTES);
      header.set(new TextEncoder().encode(IMAGE_MAGIC), IH_MAGIC);
      writeU32(header, IH_VERSION, IMAGE_VERSION);
      writeU32(header, IH_PAGE_BYTES, g.pageBytes);
      writeU32(header, IH_SPARE_BYTES, g.spareBytes);
      writeU32(header, IH_PAGES_PER_BLOCK, g.pagesPerBlock);
      writeU32(header, IH_BLOCKS, g.blocks);
      writeU32(header, IH_ENDURANCE, endurance);
      writeU32(header, IH_SECURE_OFFSET, IMAGE_SECURE_OFFSET);
      writeU32(header, IH_SECURE_BYTES, SECURE_AREA_BYTES);
      writeU32(header, IH_TABLE_OFFSET, IMAGE_TABLE_OFFSET);
      writeU32(header, IH_DATA_OFFSET, dataOffsetFor(g));
      writeU32(header, IH_CRC, crc32(header, 0, IH_CRC));
      ftruncateSync(fd, imageBytes(g));
      writeFully(fd, header, 0);
    } catch (error) {
      closeLocked(path, fd);
      throw error;
    }
    const media = new FileMedia(path, fd, g, endurance, options.durable ?? false);
    return media;
  }

  /** Opens an image; `expect` (when given) must match its geometry. */
  static open(path: string, options: { geometry?: Geometry; durable?: boolean } = {}): FileMedia {
    if (!existsSync(path)) throw new StoreError("BAD_IMAGE", `image ${path} does not exist`);
    const fd = openLocked(path, "r+");
    try {
      const size = fstatSync(fd).size;
      if (size < IMAGE_HEADER_USED) throw new StoreError("BAD_IMAGE", `image ${path} is truncated: ${size} bytes, smaller than its header`);
      const header = new Uint8Array(IMAGE_HEADER_USED);
      readFully(fd, header, 0);
      if (new TextDecoder().decode(header.subarray(IH_MAGIC, IH_MAGIC + 8)) !== IMAGE_MAGIC) throw new StoreError("BAD_IMAGE", `${path} is not a ukeysim NAND image (bad magic)`);
      if (readU32(header, IH_CRC) !== crc32(header, 0, IH_CRC)) throw new StoreError("BAD_IMAGE", `image ${path}: header CRC mismatch (the header is damaged)`);
      const version = readU32(header, IH_VERSION);
      if (version !== IMAGE_VERSION) throw new StoreError("BAD_IMAGE", `image ${path}: format version ${version} is not supported (this build reads ${IMAGE_VERSION})`);
      const g: Geometry = { pageBytes: readU32(header, IH_PAGE_BYTES), spareBytes: readU32(header, IH_SPARE_BYTES), pagesPerBlock: readU32(header, IH_PAGES_PER_BLOCK), blocks: readU32(header, IH_BLOCKS) };
      checkGeometry(g);
      if (options.geometry && !sameGeometry(options.geometry, g)) throw new StoreError("BAD_GEOMETRY", `image ${path} has geometry ${describeGeometry(g)}, expected ${describeGeometry(options.geometry)}`);
      if (readU32(header, IH_DATA_OFFSET) !== dataOffsetFor(g) || readU32(header, IH_TABLE_OFFSET) !== IMAGE_TABLE_OFFSET || readU32(header, IH_SECURE_OFFSET) !== IMAGE_SECURE_OFFSET || readU32(header, IH_SECURE_BYTES) !== SECURE_AREA_BYTES) {
        throw new StoreError("BAD_IMAGE", `image ${path}: layout offsets do not match the geometry`);
      }
      if (size !== imageBytes(g)) throw new StoreError("BAD_IMAGE", `image ${path} is ${size} bytes but its geometry needs ${imageBytes(g)} (truncated or padded)`);
      const endurance = readU32(header, IH_ENDURANCE);
      if (endurance < 1) throw new StoreError("BAD_IMAGE", `image ${path}: endurance must be positive`);
      return new FileMedia(path, fd, g, endurance, options.durable ?? false);
    } catch (error) {
      closeLocked(path, fd);
      throw error;
    }
  }

  /**
   * A read of a block's last page fetches its tail (at most TAIL_READ_AHEAD_PAGES pages, as
   * many as the previous block's reads used) and the next block's first page in one pread: a
   * store keeps its block summaries in a block's tail and mounts by reading block headers
   * (page 0) and tails in block order, and in the file the tail of block b runs straight into
   * page 0 of block b + 1. So a mount costs about one system call per written block instead
   * of one per page. A page at or past the block's write pointer is erased and costs no read;
   * in-order reads of a block (a scan of one without a summary) fetch
   * SEQUENTIAL_READ_AHEAD_PAGES at a time. The pages stay cached until the next read-ahead or
   * any write or erase (the image lock makes this process the file's only writer).
   */
  readPage(block: number, page: number, into?: Uint8Array): Uint8Array | null {
    const ppb = this.geometry.pagesPerBlock;
    const at = block * ppb + page;
    const sequential = at === this.sequentialNext;
    this.sequentialNext = at + 1;
    if (block === this.tailBlock) this.tailUsed = Math.max(this.tailUsed, ppb - page);
    if (page >= this.writePointer(block)) return null; // erased: nothing was written there since the block's erase (eraseBlock's invariant)
    if (at >= this.aheadFirst && at < this.aheadFirst + this.aheadCount) return this.aheadPage(at - this.aheadFirst, into);
    if (page === ppb - 1) {
      if (this.tailBlock >= 0) this.tailPages = Math.min(TAIL_READ_AHEAD_PAGES, this.tailUsed);
      this.tailBlock = block;
      this.tailUsed = 1;
      const first = Math.max(block * ppb, at - this.tailPages + 1);
      const end = Math.min(at + 2, this.geometry.blocks * ppb); // through page 0 of the next block, if any
      return this.readAhead(first, end - first, at, into);
    }
    if (sequential) return this.readAhead(at, Math.min(SEQUENTIAL_READ_AHEAD_PAGES, ppb - page), at, into);
    const out = into ?? new Uint8Array(this.pageTotal);
    readFully(this.fd, out, this.pageOffset(block, page));
    return invertBytes(out) ? out : null;
  }

  /** Reads `count` pages from global page `first` into the read-ahead buffer; returns page `at` of them. */
  private readAhead(first: number, count: number, at: number, into?: Uint8Array): Uint8Array | null {
    if (count > AHEAD_PAGES_MAX) throw new Error(`file media invariant violated: a read-ahead of ${count} pages is longer than its buffer`);
    this.ahead ??= new InvertBuffer(AHEAD_PAGES_MAX * this.pageTotal);
    this.aheadCount = 0; // until the read below has filled the buffer
    readFully(this.fd, this.ahead.bytes.subarray(0, count * this.pageTotal), this.dataOffset + first * this.pageTotal);
    for (let i = 0; i < count; i++) this.aheadWritten[i] = this.ahead.invert(i * this.pageTotal, this.pageTotal) ? 1 : 0;
    this.aheadFirst = first;
    this.aheadCount = count;
    return this.aheadPage(at - first, into);
  }

  /** Page i of the read-ahead, copied into `into` or a page of its own, or null when erased. */
  private aheadPage(i: number, into?: Uint8Array): Uint8Array | null {
    if (!this.aheadWritten[i] || !this.ahead) return null;
    const out = into ?? pagePieces.carve(this.pageTotal);
    out.set(this.ahead.bytes.subarray(i * this.pageTotal, (i + 1) * this.pageTotal));
    return out;
  }

  private forgetReadAhead(): void {
    this.aheadCount = 0;
  }

  writePage(block: number, page: number, content: Uint8Array): void {
    this.forgetReadAhead();
    if (this.writePointer(block) < page + 1) this.setWritePointer(block, page + 1); // table first (see header comment)
    const full = new Uint8Array(this.pageTotal).fill(0xff);
    full.set(content.subarray(0, this.pageTotal));
    invertBytes(full);
    writeFully(this.fd, full, this.pageOffset(block, page));
    this.sync();
  }

  /**
   * Invariant: cells at or past the write pointer are erased (writePage raises the pointer
   * before writing), so erasing clears pages [0, pointer) only and a never-used block stays
   * a hole in the sparse file. The chip resets the pointer after this returns.
   */
  eraseBlock(block: number): void {
    this.forgetReadAhead();
    const used = this.writePointer(block);
    if (used === 0) return;
    writeFully(this.fd, this.erasedBlock.subarray(0, used * this.pageTotal), this.pageOffset(block, 0));
    this.sync();
  }

  eraseCount(block: number): number {
    return readU32(this.table, block * IMAGE_TABLE_ENTRY_BYTES + TE_ERASE_COUNT);
  }

  setEraseCount(block: number, count: number): void {
    writeU32(this.table, block * IMAGE_TABLE_ENTRY_BYTES + TE_ERASE_COUNT, count);
    this.flushEntry(block);
  }

  writePointer(block: number): number {
    return readU16(this.table, block * IMAGE_TABLE_ENTRY_BYTES + TE_WRITE_POINTER);
  }

  setWritePointer(block: number, page: number): void {
    if (this.writePointer(block) === page) return;
    writeU16(this.table, block * IMAGE_TABLE_ENTRY_BYTES + TE_WRITE_POINTER, page);
    this.flushEntry(block);
  }

  blockFlags(block: number): number {
    return this.table[block * IMAGE_TABLE_ENTRY_BYTES + TE_FLAGS] as number;
  }

  setBlockFlags(block: number, flags: number): void {
    this.table[block * IMAGE_TABLE_ENTRY_BYTES + TE_FLAGS] = flags;
    this.flushEntry(block);
  }

  readSecure(): Uint8Array {
    const out = new Uint8Array(SECURE_AREA_BYTES);
    readFully(this.fd, out, IMAGE_SECURE_OFFSET);
    return out;
  }

  writeSecure(offset: number, data: Uint8Array): void {
    checkSecureWrite(offset, data);
    writeFully(this.fd, data, IMAGE_SECURE_OFFSET + offset);
    this.sync();
  }

  close(): void {
    if (this.fd < 0) return;
    closeLocked(this.path, this.fd);
    this.fd = -1;
  }

  private pageOffset(block: number, page: number): number {
    return this.dataOffset + (block * this.geometry.pagesPerBlock + page) * this.pageTotal;
  }

  private flushEntry(block: number): void {
    const at = block * IMAGE_TABLE_ENTRY_BYTES;
    writeFully(this.fd, this.table.subarray(at, at + IMAGE_TABLE_ENTRY_BYTES), IMAGE_TABLE_OFFSET + at);
  }

  private sync(): void {
    if (this.durable) fsyncSync(this.fd);
  }
}

/** Takes the image's lock (see image-lock.ts), then opens the file; on failure holds nothing. */
function openLocked(path: string, flags: "w+" | "r+"): number {
  acquireImageLock(path);
  try {
    return openSync(path, flags);
  } catch (error) {
    releaseImageLock(path);
    throw error;
  }
}

function closeLocked(path: string, fd: number): void {
  closeSync(fd);
  releaseImageLock(path);
}

function readFully(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new StoreError("BAD_IMAGE", `image read past its end at offset ${position + done}`);
    done += n;
  }
}

function writeFully(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

/** A new chip backed by a new image file. Factory-bad blocks are marked at creation. */
export function createImage(path: string, options: ImageOptions = {}): NandChip {
  const media = FileMedia.create(path, options);
  const chip = new NandChip(media, { endurance: media.endurance });
  for (const b of options.factoryBadBlocks ?? []) chip.makeFactoryBad(b);
  return chip;
}

/** A chip backed by an existing image file; throws StoreError BAD_IMAGE / BAD_GEOMETRY. */
export function openImage(path: string, options: { geometry?: Geometry; durable?: boolean } = {}): NandChip {
  const media = FileMedia.open(path, options);
  return new NandChip(media, { endurance: media.endurance });
}

/** Writes a chip's cells, erase counts and secure area into a new image file (e.g. to persist a memory chip). */
export function saveImage(chip: NandChip, path: string, options: { overwrite?: boolean } = {}): void {
  const g = chip.geometry;
  const media = FileMedia.create(path, { geometry: g, endurance: chip.endurance, overwrite: options.overwrite ?? false });
  try {
    const source = chip.media;
    for (let b = 0; b < g.blocks; b++) {
      media.setEraseCount(b, source.eraseCount(b));
      if (source.blockFlags(b)) media.setBlockFlags(b, source.blockFlags(b));
      for (let p = 0; p < g.pagesPerBlock; p++) {
        const content = source.readPage(b, p);
        if (content) media.writePage(b, p, content);
      }
      media.setWritePointer(b, Math.max(media.writePointer(b), source.writePointer(b)));
    }
    media.writeSecure(0, source.readSecure());
  } finally {
    media.close();
  }
}
