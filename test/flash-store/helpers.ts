import { Rng } from "../../src/sim/index.ts";
import type { Geometry, TxOp } from "../../src/flash-store/index.ts";

export const KEY = new Uint8Array(16).map((_, i) => i + 1);
export const OTHER_KEY = new Uint8Array(16).map((_, i) => 0xa0 + i);
export const TINY: Geometry = { pageBytes: 512, spareBytes: 16, pagesPerBlock: 8, blocks: 16 };
export const CRITICAL_TYPE = 0x10;
export const INVOICE_TYPE = 0x50;
export const OTHER_TYPE = 0x51;

/** A random transaction over a small key space (so ops collide). */
export function randomTx(rng: Rng, opts: { keys?: number; maxBytes?: number; bigChance?: number } = {}): TxOp[] {
  const keys = opts.keys ?? 10;
  const maxBytes = opts.maxBytes ?? 300;
  const ops: TxOp[] = [];
  const n = rng.range(1, 4);
  for (let j = 0; j < n; j++) {
    const type = rng.pick([CRITICAL_TYPE, INVOICE_TYPE, OTHER_TYPE]);
    const id = rng.int(keys);
    const r = rng.int(10);
    if (r < 6) {
      const big = rng.float() < (opts.bigChance ?? 0.05);
      ops.push({ kind: "put", type, id, value: rng.bytes(big ? rng.range(600, 4096) : rng.int(maxBytes + 1)) });
    } else if (r < 8) ops.push({ kind: "delete", type, id });
    else ops.push({ kind: "reclaimable", type, id });
  }
  return ops;
}
