/**
 * The store's in-memory index is typed tables (item-table.ts, rec-table.ts): these tests
 * check the tables on their own and, through FlashStore.checkIndex(), that the index always
 * equals a recount from the block lists and the records (OpenSK-style invariant check)
 * across GC, scrubs, rollover, tombstone dropping, lost items and remounts.
 */
import { describe, expect, it } from "vitest";
import { FlashStore, ModelStore, NandChip, SMALL_GEOMETRY, StoreError, diffStores, type TxOp } from "../../src/flash-store/index.ts";
import { ItemTable, NIL } from "../../src/flash-store/item-table.ts";
import { RecTable } from "../../src/flash-store/rec-table.ts";
import { Rng } from "../../src/sim/index.ts";
import { CRITICAL_TYPE, INVOICE_TYPE, KEY, OTHER_TYPE, randomTx, TINY } from "./helpers.ts";

function allKeys(ids: number) {
  return [CRITICAL_TYPE, INVOICE_TYPE, OTHER_TYPE].flatMap((type) => Array.from({ length: ids }, (_, id) => ({ type, id })));
}

describe("RecTable", () => {
  it("agrees with a Map under random inserts, finds and removes, through growth and backward-shift deletes", () => {
    const t = new RecTable();
    const ref = new Map<number, number>(); // key -> row
    const rng = new Rng(0x7ab1e);
    const key = (type: number, id: number) => type * 2 ** 32 + id;
    for (let step = 0; step < 20_000; step++) {
      // clustered ids (runs share hash runs) and a few huge ones, over 3 types
      const type = rng.pick([0, 0x10, 0x50]);
      const id = rng.float() < 0.9 ? rng.int(3000) : rng.int(2 ** 32);
      const k = key(type, id);
      const op = rng.int(10);
      if (op < 5) {
        const r = t.findOrInsert(type, id);
        if (ref.has(k)) expect(r).toBe(ref.get(k));
        else {
          expect(t.kind[r]).toBe(0);
          t.kind[r] = 1;
          ref.set(k, r);
        }
      } else if (op < 8) {
        expect(t.find(type, id)).toBe(ref.get(k) ?? NIL);
      } else if (ref.has(k)) {
        t.remove(ref.get(k) as number);
        ref.delete(k);
        expect(t.find(type, id)).toBe(NIL);
      }
      expect(t.size).toBe(ref.size);
      expect(t.size * 2).toBeLessThanOrEqual(t.slotCount);
    }
    for (const [k, r] of ref) expect(t.find(Math.floor(k / 2 ** 32), k % 2 ** 32)).toBe(r);
    // the type lists hold exactly the rows, in insertion order per type
    let listed = 0;
    for (let type = 0; type < 256; type++) {
      let n = 0;
      for (let r = t.firstOf(type); r !== NIL; r = t.nextOf(r)) {
        expect(t.type[r]).toBe(type);
        expect(ref.get(key(type, t.id[r] as number))).toBe(r);
        n++;
      }
      expect(n).toBe(t.countOf(type));
      listed += n;
    }
    expect(listed).toBe(ref.size);
  });

  it("moveToTail puts a row last in its type's list (mount: a key's place is that of its first record item)", () => {
    const t = new RecTable();
    const [a, b, c] = [1, 2, 3].map((id) => t.findOrInsert(7, id)) as [number, number, number];
    const other = t.findOrInsert(8, 1);
    const order = (type: number) => {
      const out: number[] = [];
      for (let r = t.firstOf(type); r !== NIL; r = t.nextOf(r)) out.push(r);
      return out;
    };
    t.moveToTail(a);
    expect(order(7)).toEqual([b, c, a]);
    t.moveToTail(a); // already last: unchanged
    t.moveToTail(c);
    expect(order(7)).toEqual([b, a, c]);
    expect(t.countOf(7)).toBe(3);
    expect(order(8)).toEqual([other]);
    t.remove(a);
    expect(order(7)).toEqual([b, c]);
    expect(t.find(7, 2)).toBe(b);
  });

  it("reserve sizes once: inserting what was reserved neither grows rows nor rehashes", () => {
    const t = new RecTable();
    t.reserve(1000);
    const slots = t.slotCount;
    for (let id = 0; id < 1000; id++) t.findOrInsert(0x50, id);
    expect(t.slotCount).toBe(slots);
    expect(t.size).toBe(1000);
  });
});

describe("ItemTable", () => {
  it("reuses freed rows before growing, and growth keeps every field", () => {
    const t = new ItemTable(2);
    const a = t.alloc();
    const b = t.alloc();
    t.version[a] = 2 ** 47 + 5;
    t.id[b] = 0xffff_fffe;
    const c = t.alloc(); // grows
    expect(t.capacity).toBeGreaterThanOrEqual(3);
    expect(t.version[a]).toBe(2 ** 47 + 5);
    expect(t.id[b]).toBe(0xffff_fffe);
    t.free(b);
    expect(t.size).toBe(2);
    expect(t.freeRows()).toBe(1);
    expect(t.alloc()).toBe(b); // the freed row, not a new one
    expect(t.top).toBe(3);
    expect([a, b, c].every((h) => t.block[h] === -1 && t.live[h] === 0 && t.next[h] === NIL)).toBe(true);
  });
});

describe("FlashStore index equals a recount", () => {
  it("over a random workload with GC, rollover, big records, deletes and remounts (tiny chip)", () => {
    const chip = NandChip.memory({ geometry: TINY });
    let store = FlashStore.format(chip, { key: KEY });
    const model = new ModelStore();
    const rng = new Rng(0x1de);
    let maxRows = 0;
    for (let i = 0; i < 1200; i++) {
      const tx = randomTx(rng, { keys: 12, maxBytes: 200, bigChance: 0.08 });
      const before = store.stats().reclaimedRecords;
      try {
        store.commit(tx);
      } catch (error) {
        if (!(error instanceof StoreError) || error.code !== "STORAGE_FULL") throw error;
        store.checkIndex();
        continue; // nothing written: the model skips it too
      }
      model.commit(tx);
      const rolled = store.stats().reclaimedRecords - before;
      if (rolled) model.reclaimOldest(rolled);
      const seen = store.checkIndex();
      maxRows = Math.max(maxRows, seen.itemRows);
      if (i % 150 === 149) {
        store = FlashStore.mount(chip, { key: KEY });
        store.checkIndex();
      }
    }
    expect(diffStores(store, model, allKeys(12))).toBeNull();
    // erased blocks give their rows back: the table stays near what the chip holds (16 blocks
    // of 8 pages of 512 B hold at most a few hundred items), however long the workload
    expect(maxRows).toBeLessThan(16 * 8 * 8);
  });

  it("with rollover of reclaimable records on a full chip", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const rng = new Rng(5);
    for (let id = 0; id < 300; id++) {
      const ops: TxOp[] = [{ kind: "put", type: INVOICE_TYPE, id, value: rng.bytes(150) }];
      if (id > 0) ops.push({ kind: "reclaimable", type: INVOICE_TYPE, id: id - 1 });
      store.commit(ops);
      store.checkIndex();
    }
    expect(store.stats().reclaimedRecords).toBeGreaterThan(0);
    FlashStore.mount(chip, { key: KEY }).checkIndex();
  });

  it("with read errors (ECC corrections, scrubs, repairs, lost items) on a small chip", () => {
    const chip = NandChip.memory({ geometry: SMALL_GEOMETRY });
    let store = FlashStore.format(chip, { key: KEY });
    const rng = new Rng(0xecc);
    chip.setReadFlips(0.3, new Rng(0xf1));
    for (let i = 0; i < 600; i++) {
      store.commit(randomTx(rng, { keys: 30 }));
      if (i % 40 === 0) store.maintain();
      store.checkIndex();
      if (i % 200 === 199) {
        store = FlashStore.mount(chip, { key: KEY });
        store.checkIndex();
      }
    }
    expect(store.flashStats().eccCorrections).toBeGreaterThan(0);
  });

  it("when garbage collection meets a record whose bytes are lost: the item row stays (detached) until overwritten", () => {
    const chip = NandChip.memory({ geometry: TINY });
    let store = FlashStore.format(chip, { key: KEY });
    const rng = new Rng(11);
    for (let id = 0; id < 10; id++) store.commit([{ kind: "put", type: INVOICE_TYPE, id, value: rng.bytes(400) }]);
    const lost = store.locations(INVOICE_TYPE, 0)[0]!;
    // six flipped bits in one ECC sector of its page: uncorrectable, so the record is unreadable
    for (let bit = 0; bit < 6; bit++) {
      const at = 8 * 60 + bit * 9;
      const now = (chip.readPage(lost.block, lost.page)[at >>> 3]! >> (at & 7)) & 1;
      chip.stickBit(lost.block, lost.page, at, now ? 0 : 1);
    }
    store = FlashStore.mount(chip, { key: KEY });
    // rewrite the others until the lost record's block is collected
    for (let round = 0; round < 40 && store.flashStats().lostItems === 0; round++) {
      for (let id = 1; id < 10; id++) store.commit([{ kind: "put", type: INVOICE_TYPE, id, value: rng.bytes(400) }]);
      store.checkIndex();
    }
    expect(store.flashStats().lostItems).toBeGreaterThan(0);
    expect(store.checkIndex().detachedItems).toBe(1);
    expect(() => store.get(INVOICE_TYPE, 0)).toThrow(StoreError);
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 0, value: new Uint8Array([1, 2, 3]) }]);
    expect(store.checkIndex().detachedItems).toBe(0); // no longer referred to: its row is free again
    expect(store.get(INVOICE_TYPE, 0)).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("after a mount without the key (inspection) and read-only", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const rng = new Rng(3);
    for (let i = 0; i < 100; i++) store.commit(randomTx(rng, { keys: 8 }));
    const seen = FlashStore.inspect(chip).checkIndex();
    expect(seen.records).toBe(FlashStore.mount(chip, { key: KEY, readOnly: true }).checkIndex().records);
  });
});
