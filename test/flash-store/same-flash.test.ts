/**
 * The typed-array index (item-table.ts, rec-table.ts) replaced an index of one object per
 * item and per record without changing what the store does on flash. The golden values
 * below were produced by the object-index store (main at 0d99393) for the same seeded
 * workload: every page byte (CRC over all pages), every program, erase and read must match.
 * A deliberate change of the write path, GC or read pattern updates them (say why).
 */
import { describe, expect, it } from "vitest";
import { crc32, FlashStore, NandChip, SMALL_GEOMETRY, StoreError, type Geometry, type TxOp } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";

const KEY = new Uint8Array(16).fill(0x42);
const TINY: Geometry = { pageBytes: 512, spareBytes: 16, pagesPerBlock: 8, blocks: 16 };

function run(geometry: Geometry) {
  const chip = NandChip.memory({ geometry });
  let store = FlashStore.format(chip, { key: KEY });
  const rng = new Rng(99);
  let full = 0;
  for (let i = 0; i < 1200; i++) {
    const ops: TxOp[] = [];
    for (let j = 0, n = rng.range(1, 4); j < n; j++) {
      const type = rng.pick([0x10, 0x50, 0x51]);
      const id = rng.int(30);
      const r = rng.int(10);
      if (r < 6) ops.push({ kind: "put", type, id, value: rng.bytes(rng.float() < 0.05 ? rng.range(600, 4096) : rng.int(300)) });
      else if (r < 8) ops.push({ kind: "delete", type, id });
      else ops.push({ kind: "reclaimable", type, id });
    }
    try {
      store.commit(ops);
    } catch (error) {
      if (!(error instanceof StoreError) || error.code !== "STORAGE_FULL") throw error;
      full++;
    }
    if (i % 300 === 299) store = FlashStore.mount(chip, { key: KEY });
  }
  let crc = 0;
  for (let b = 0; b < geometry.blocks; b++) for (let p = 0; p < geometry.pagesPerBlock; p++) crc = crc32(chip.readPage(b, p), 0, undefined, crc);
  const s = store.stats();
  return { crc, full, programs: chip.counters.programs, erases: chip.counters.erases, reads: chip.counters.reads, records: s.records, reclaimed: s.reclaimedRecords };
}

describe("flash behaviour is that of the object-index store", () => {
  it("32-block chip: same pages, programs, erases and reads", () => {
    expect(run(SMALL_GEOMETRY)).toEqual({ crc: 3451893224, full: 0, programs: 4717, erases: 320, reads: 1461, records: 67, reclaimed: 0 });
  });

  it("16-block tiny chip (full: rollover and STORAGE_FULL): same pages, programs, erases and reads", () => {
    expect(run(TINY)).toEqual({ crc: 741429403, full: 80, programs: 21362, erases: 2712, reads: 13328, records: 59, reclaimed: 189 });
  });
});
