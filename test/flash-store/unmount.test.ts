/**
 * unmount(): a store hands its index memory back for the next mount (columns.ts spare
 * memory), and a stale store can never read or write through memory another store now owns.
 * Also the mount's own reuse: pages read into one buffer (Media.readPage `into`) and summary
 * copies kept in scratch, on memory and file chips alike.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { diffStores, FlashStore, keysOf, ModelStore, NandChip, openImage, saveImage, StoreError, type Geometry, type TxOp } from "../../src/flash-store/index.ts";
import { spareTableBytes } from "../../src/flash-store/columns.ts";
import { PAGE_KIND_SUMMARY, PH_KIND, PH_TOTAL, readU16 } from "../../src/flash-store/layout.ts";
import { Rng } from "../../src/sim/index.ts";
import { INVOICE_TYPE, KEY } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "ukeysim-unmount-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 128 blocks of 16 small pages: room for a few thousand small records, so the index tables are large (own buffers, not slab pieces). */
const GEOMETRY: Geometry = { pageBytes: 512, spareBytes: 16, pagesPerBlock: 16, blocks: 128 };
const RECORDS = 2000;

function filledChip(seed = 11): { chip: NandChip; model: ModelStore; keys: { type: number; id: number }[] } {
  const chip = NandChip.memory({ geometry: GEOMETRY });
  const store = FlashStore.format(chip, { key: KEY });
  const model = new ModelStore();
  const txs: TxOp[][] = [];
  const rng = new Rng(seed);
  for (let id = 0; id < RECORDS; id += 8) {
    const tx: TxOp[] = [];
    for (let i = 0; i < 8; i++) tx.push({ kind: "put", type: INVOICE_TYPE, id: id + i, value: rng.bytes(1 + rng.int(40)) });
    if (id % 64 === 0) tx.push({ kind: "delete", type: INVOICE_TYPE, id: id + 3 }, { kind: "reclaimable", type: INVOICE_TYPE, id: id + 5 });
    store.commit(tx);
    model.commit(tx);
    txs.push(tx);
  }
  return { chip, model, keys: keysOf(txs) };
}

function expectUnmounted(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe("UNMOUNTED");
    return;
  }
  throw new Error("expected StoreError UNMOUNTED");
}

describe("unmount", () => {
  it("ends the store: every call throws UNMOUNTED, and a second unmount does nothing", () => {
    const { chip } = filledChip();
    const store = FlashStore.mount(chip, { key: KEY });
    const other = FlashStore.mount(chip.fork(), { key: KEY, readOnly: true });
    store.unmount();
    store.unmount();
    expectUnmounted(() => store.get(INVOICE_TYPE, 0));
    expectUnmounted(() => store.ids(INVOICE_TYPE));
    expectUnmounted(() => store.isReclaimable(INVOICE_TYPE, 5));
    expectUnmounted(() => store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: new Uint8Array(1) }]));
    expectUnmounted(() => store.stats());
    expectUnmounted(() => store.flashStats());
    expectUnmounted(() => store.locations(INVOICE_TYPE, 0));
    expectUnmounted(() => store.checkIndex());
    expectUnmounted(() => store.maintain());
    expectUnmounted(() => other.readsSameAs(store, INVOICE_TYPE, 0));
    expect(other.get(INVOICE_TYPE, 0)).toBeDefined(); // the other store is untouched
  });

  it("hands the index memory to the next mount, which reads the same records", () => {
    const { chip, model, keys } = filledChip();
    const first = FlashStore.mount(chip, { key: KEY });
    expect(diffStores(first, model, keys)).toBeNull();
    const spareBefore = spareTableBytes();
    first.unmount();
    const handedBack = spareTableBytes() - spareBefore;
    expect(handedBack).toBeGreaterThan(RECORDS * 40); // item and record rows are ~45 B each
    const second = FlashStore.mount(chip, { key: KEY });
    expect(spareTableBytes()).toBeLessThan(spareBefore + handedBack); // taken again
    expect(second.checkIndex().items).toBe(FlashStore.mount(chip.fork(), { key: KEY, readOnly: true }).checkIndex().items);
    expect(diffStores(second, model, keys)).toBeNull();
    // The stale store cannot reach the tables it gave away, and its calls leave them alone.
    expectUnmounted(() => first.get(INVOICE_TYPE, 0));
    second.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: new Uint8Array([7]) }]);
    model.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: new Uint8Array([7]) }]);
    expect(diffStores(second, model, keys)).toBeNull();
    second.unmount();
    expect(diffStores(FlashStore.mount(chip, { key: KEY }), model, keys)).toBeNull();
  });

  it("mounts a device on tables another device's store left behind (reused rows are not zeroed)", () => {
    const other = filledChip(21);
    const mine = filledChip(22);
    // Rewrite some of mine so its items and records differ from the other's row for row.
    const store = FlashStore.mount(mine.chip, { key: KEY });
    for (let id = 0; id < RECORDS; id += 7) {
      const tx: TxOp[] = [{ kind: "put", type: INVOICE_TYPE, id, value: new Uint8Array([id & 0xff, 1, 2]) }];
      store.commit(tx);
      mine.model.commit(tx);
    }
    store.unmount();
    for (let round = 0; round < 3; round++) {
      const theirs = FlashStore.mount(other.chip, { key: KEY });
      expect(diffStores(theirs, other.model, other.keys)).toBeNull();
      theirs.unmount(); // its rows are now the spare memory the next mount takes
      const ours = FlashStore.mount(mine.chip, { key: KEY });
      expect(diffStores(ours, mine.model, mine.keys), `round ${round}`).toBeNull();
      ours.checkIndex();
      ours.unmount();
    }
  });

  it("remounts a file image repeatedly to the records of its memory twin (pages read into one reused buffer)", () => {
    const { chip, model, keys } = filledChip();
    const path = join(dir, "twin.img");
    saveImage(chip, path);
    for (let round = 0; round < 3; round++) {
      const file = openImage(path);
      try {
        const store = FlashStore.mount(file, { key: KEY });
        expect(diffStores(store, model, keys), `round ${round}`).toBeNull();
        expect(store.checkIndex().items).toBe(FlashStore.mount(chip.fork(), { key: KEY, readOnly: true }).checkIndex().items);
        store.unmount();
      } finally {
        file.close();
      }
    }
  });

  it("scans a sealed block whose summary is unreadable, from memory and from a file", () => {
    const { chip, model, keys } = filledChip();
    // A sealed block with several summary pages: make its first one uncorrectable.
    const ppb = GEOMETRY.pagesPerBlock;
    let target = -1;
    let total = 0;
    for (let b = 0; b < GEOMETRY.blocks && target < 0; b++) {
      const last = chip.readPage(b, ppb - 1);
      if (last[PH_KIND] === PAGE_KIND_SUMMARY && readU16(last, PH_TOTAL) >= 2) {
        target = b;
        total = readU16(last, PH_TOTAL);
      }
    }
    expect(target).toBeGreaterThanOrEqual(0);
    const clean = chip.fork();
    const cleanReads = clean.counters.reads;
    FlashStore.mount(clean, { key: KEY, readOnly: true });
    const mountReads = clean.counters.reads - cleanReads; // before the bits were stuck: summaries only
    const path = join(dir, "bad-summary.img");
    saveImage(chip, path); // stuck bits are a chip fault, not stored: they are stuck again on the file chip below
    const page = ppb - total;
    const bits = [0, 3, 6, 9, 12, 15, 18, 21].map((i) => 8 * 40 + i * 11);
    const sticks = bits.map((bit) => ({ bit, value: ((chip.readPage(target, page)[bit >>> 3]! >> (bit & 7)) & 1 ? 0 : 1) as 0 | 1 }));
    for (const { bit, value } of sticks) chip.stickBit(target, page, bit, value); // each bit reads inverted
    const corrupt = chip.fork();
    const reads0 = corrupt.counters.reads;
    const fromMemory = FlashStore.mount(corrupt, { key: KEY, readOnly: true });
    expect(corrupt.counters.reads - reads0).toBeGreaterThan(mountReads); // the block's data pages were scanned
    expect(diffStores(fromMemory, model, keys)).toBeNull();
    const file = openImage(path);
    try {
      for (const { bit, value } of sticks) file.stickBit(target, page, bit, value);
      const fileReads0 = file.counters.reads;
      const fromFile = FlashStore.mount(file, { key: KEY, readOnly: true });
      expect(file.counters.reads - fileReads0).toBeGreaterThan(mountReads);
      expect(diffStores(fromFile, model, keys)).toBeNull();
    } finally {
      file.close();
    }
  });
});
