/**
 * NAND geometry: how many bytes a page holds, its spare (out-of-band) area, pages per
 * block and blocks per chip. The default is the device of the paper: 2048 + 64 bytes per
 * page, 64 pages per block, 1024 blocks = 128 MiB of data area.
 */
import { StoreError } from "./api.ts";

export interface Geometry {
  /** Data bytes per page (a multiple of ECC_SECTOR_BYTES). */
  readonly pageBytes: number;
  /** Spare (out-of-band) bytes per page: bad-block marker and ECC. */
  readonly spareBytes: number;
  readonly pagesPerBlock: number;
  readonly blocks: number;
}

export const DEFAULT_GEOMETRY: Geometry = Object.freeze({ pageBytes: 2048, spareBytes: 64, pagesPerBlock: 64, blocks: 1024 });
/** A small chip for tests and campaigns: 32 blocks of 16 pages of 512 + 16 bytes = 256 KiB. */
export const SMALL_GEOMETRY: Geometry = Object.freeze({ pageBytes: 512, spareBytes: 16, pagesPerBlock: 16, blocks: 32 });

/** One ECC codeword covers this many data bytes. */
export const ECC_SECTOR_BYTES = 512;
/** ECC bytes stored per sector (two 12-bit line/column parities, see ecc.ts). */
export const ECC_BYTES_PER_SECTOR = 3;
/** Spare byte 0 of page 0 is the bad-block marker: 0xFF means good. */
export const BAD_BLOCK_MARKER_OFFSET = 0;
/** ECC bytes begin here in the spare area. */
export const SPARE_ECC_OFFSET = 1;

export const GEOMETRY_LIMITS = Object.freeze({
  pageBytesMax: 16384,
  spareBytesMax: 1024,
  pagesPerBlockMin: 4,
  pagesPerBlockMax: 256,
  blocksMin: 8,
  blocksMax: 65536,
});

export function pageTotalBytes(g: Geometry): number {
  return g.pageBytes + g.spareBytes;
}

export function deviceDataBytes(g: Geometry): number {
  return g.pageBytes * g.pagesPerBlock * g.blocks;
}

/** Throws StoreError BAD_GEOMETRY unless `g` is a geometry the chip and store support. */
export function checkGeometry(g: Geometry): void {
  const L = GEOMETRY_LIMITS;
  const fields: [string, number, number, number][] = [
    ["pageBytes", g.pageBytes, ECC_SECTOR_BYTES, L.pageBytesMax],
    ["spareBytes", g.spareBytes, 1, L.spareBytesMax],
    ["pagesPerBlock", g.pagesPerBlock, L.pagesPerBlockMin, L.pagesPerBlockMax],
    ["blocks", g.blocks, L.blocksMin, L.blocksMax],
  ];
  for (const [name, value, min, max] of fields) {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new StoreError("BAD_GEOMETRY", `geometry ${name} must be an integer ${min}..${max}, got ${value}`);
    }
  }
  if (g.pageBytes % ECC_SECTOR_BYTES !== 0) throw new StoreError("BAD_GEOMETRY", `geometry pageBytes must be a multiple of ${ECC_SECTOR_BYTES}, got ${g.pageBytes}`);
  const need = SPARE_ECC_OFFSET + (g.pageBytes / ECC_SECTOR_BYTES) * ECC_BYTES_PER_SECTOR;
  if (g.spareBytes < need) throw new StoreError("BAD_GEOMETRY", `geometry spareBytes must be at least ${need} for ${g.pageBytes}-byte pages (marker + ECC), got ${g.spareBytes}`);
}

export function sameGeometry(a: Geometry, b: Geometry): boolean {
  return a.pageBytes === b.pageBytes && a.spareBytes === b.spareBytes && a.pagesPerBlock === b.pagesPerBlock && a.blocks === b.blocks;
}

export function describeGeometry(g: Geometry): string {
  return `${g.blocks} blocks x ${g.pagesPerBlock} pages x (${g.pageBytes}+${g.spareBytes}) B`;
}
