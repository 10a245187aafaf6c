import { describe, expect, it } from "vitest";
import {
  FlashStore, MAX_RECORD_BYTES, MAX_TX_OPS, ModelStore, NandChip, SMALL_GEOMETRY, StoreError, diffStores, pageTotalBytes, type StoreErrorCode, type TxOp,
} from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { CRITICAL_TYPE, INVOICE_TYPE, KEY, OTHER_KEY, OTHER_TYPE, randomTx, TINY } from "./helpers.ts";

const text = (s: string) => new TextEncoder().encode(s);

function expectCode(fn: () => unknown, code: StoreErrorCode): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe(code);
    expect((error as StoreError).message.length).toBeGreaterThan(10);
    return;
  }
  throw new Error(`expected StoreError ${code}`);
}

function allKeys(types = [CRITICAL_TYPE, INVOICE_TYPE, OTHER_TYPE], ids = 40) {
  return types.flatMap((type) => Array.from({ length: ids }, (_, id) => ({ type, id })));
}

describe("FlashStore basics", () => {
  it("puts, gets, deletes, marks and survives remount", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 7, value: text("invoice seven") }, { kind: "put", type: CRITICAL_TYPE, id: 1, value: text("state") }]);
    store.commit([{ kind: "reclaimable", type: INVOICE_TYPE, id: 7 }]);
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 8, value: new Uint8Array(MAX_RECORD_BYTES).fill(9) }, { kind: "delete", type: CRITICAL_TYPE, id: 1 }]);
    const again = FlashStore.mount(chip, { key: KEY });
    expect(new TextDecoder().decode(again.get(INVOICE_TYPE, 7))).toBe("invoice seven");
    expect(again.isReclaimable(INVOICE_TYPE, 7)).toBe(true);
    expect(again.get(CRITICAL_TYPE, 1)).toBeUndefined();
    expect(again.get(INVOICE_TYPE, 8)).toEqual(new Uint8Array(MAX_RECORD_BYTES).fill(9));
    expect(again.ids(INVOICE_TYPE)).toEqual([7, 8]);
    expect(again.stats().records).toBe(2);
  });

  it("matches the model over a long random workload with remounts", () => {
    const chip = NandChip.memory({ geometry: SMALL_GEOMETRY });
    let store = FlashStore.format(chip, { key: KEY });
    const model = new ModelStore();
    const rng = new Rng(77);
    for (let i = 0; i < 1500; i++) {
      const tx = randomTx(rng, { keys: 40 });
      const before = store.stats().reclaimedRecords;
      store.commit(tx);
      model.commit(tx);
      const rolled = store.stats().reclaimedRecords - before;
      if (rolled) model.reclaimOldest(rolled);
      if (i % 250 === 0) store = FlashStore.mount(chip, { key: KEY });
    }
    expect(diffStores(store, model, allKeys())).toBeNull();
    expect(diffStores(FlashStore.mount(chip, { key: KEY }), model, allKeys())).toBeNull();
  });
});

describe("tombstones", () => {
  it("deleted records never come back across GC and remounts, and tombstones are collected", () => {
    const chip = NandChip.memory({ geometry: TINY });
    let store = FlashStore.format(chip, { key: KEY });
    const rng = new Rng(31);
    for (let i = 0; i < 400; i++) {
      store.commit([{ kind: "put", type: INVOICE_TYPE, id: i, value: rng.bytes(300) }]);
      store.commit([{ kind: "delete", type: INVOICE_TYPE, id: i }, { kind: "put", type: OTHER_TYPE, id: i % 5, value: rng.bytes(300) }]);
      if (i % 97 === 0) store = FlashStore.mount(chip, { key: KEY });
    }
    for (const s of [store, FlashStore.mount(chip, { key: KEY })]) {
      expect(s.ids(INVOICE_TYPE)).toEqual([]);
      expect(s.ids(OTHER_TYPE)).toEqual([0, 1, 2, 3, 4]);
      // 5 live records and few tombstones left: far below what 400 tombstones would cost
      expect(s.flashStats().liveBytes).toBeLessThan(s.flashStats().capacityBytes / 4);
    }
  });
});

describe("bad input changes nothing", () => {
  const setup = () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("keep") }]);
    return { chip, store };
  };

  it("rejects oversize records, oversize transactions and bad record keys", () => {
    const { chip, store } = setup();
    const ops = chip.opCount;
    expectCode(() => store.commit([{ kind: "put", type: INVOICE_TYPE, id: 2, value: new Uint8Array(MAX_RECORD_BYTES + 1) }]), "RECORD_TOO_LARGE");
    expectCode(() => store.commit(Array.from({ length: MAX_TX_OPS + 1 }, (_, id): TxOp => ({ kind: "delete", type: 1, id }))), "TX_TOO_LARGE");
    expectCode(() => store.commit([{ kind: "put", type: 256, id: 2, value: text("x") }]), "BAD_KEY");
    expectCode(() => store.commit([{ kind: "put", type: 1, id: -1, value: text("x") }]), "BAD_KEY");
    expectCode(() => store.commit([{ kind: "put", type: 1, id: 1, value: "nope" as unknown as Uint8Array }]), "BAD_KEY");
    expect(chip.opCount).toBe(ops);
    expect(new TextDecoder().decode(store.get(INVOICE_TYPE, 1))).toBe("keep");
  });

  it("rejects bad data keys and detects a wrong key", () => {
    const { chip } = setup();
    expectCode(() => FlashStore.mount(chip, { key: new Uint8Array(15) }), "BAD_KEY");
    expectCode(() => FlashStore.mount(chip, { key: undefined as unknown as Uint8Array }), "BAD_KEY");
    expectCode(() => FlashStore.mount(chip, { key: OTHER_KEY }), "WRONG_KEY");
    expectCode(() => FlashStore.format(chip, { key: new Uint8Array(3) }), "BAD_KEY");
  });

  it("refuses to mount a blank chip", () => {
    expectCode(() => FlashStore.mount(NandChip.memory({ geometry: TINY }), { key: KEY }), "BAD_IMAGE");
  });

  it("read-only inspection reads metadata and refuses commits and payloads", () => {
    const { chip } = setup();
    const view = FlashStore.inspect(chip);
    expect(view.stats().records).toBe(1);
    expectCode(() => view.commit([]), "READ_ONLY");
    expectCode(() => view.get(INVOICE_TYPE, 1), "READ_ONLY");
  });
});

describe("space: STORAGE_FULL and rollover", () => {
  it("fails with STORAGE_FULL and loses nothing when nothing is reclaimable", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const model = new ModelStore();
    let full = false;
    for (let id = 0; id < 500 && !full; id++) {
      const tx: TxOp[] = [{ kind: "put", type: INVOICE_TYPE, id, value: new Rng(id).bytes(400) }];
      try {
        store.commit(tx);
        model.commit(tx);
      } catch (error) {
        expect((error as StoreError).code).toBe("STORAGE_FULL");
        full = true;
      }
    }
    expect(full).toBe(true);
    const keys = allKeys([INVOICE_TYPE], 500);
    expect(diffStores(store, model, keys)).toBeNull();
    expect(diffStores(FlashStore.mount(chip, { key: KEY }), model, keys)).toBeNull();
  });

  it("rollover reclaims marked records oldest mark first, and only those", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const model = new ModelStore();
    const keep = text("must never be reclaimed");
    store.commit([{ kind: "put", type: OTHER_TYPE, id: 0, value: keep }]);
    model.commit([{ kind: "put", type: OTHER_TYPE, id: 0, value: keep }]);
    for (let id = 0; id < 400; id++) {
      const tx: TxOp[] = [{ kind: "put", type: INVOICE_TYPE, id, value: new Rng(id).bytes(400) }, { kind: "reclaimable", type: INVOICE_TYPE, id }];
      const before = store.stats().reclaimedRecords;
      store.commit(tx);
      model.commit(tx);
      const rolled = store.stats().reclaimedRecords - before;
      if (rolled) model.reclaimOldest(rolled);
    }
    expect(store.stats().reclaimedRecords).toBeGreaterThan(100);
    expect(store.get(INVOICE_TYPE, 0)).toBeUndefined(); // oldest went first
    expect(store.get(INVOICE_TYPE, 399)).toBeDefined(); // newest kept
    expect(store.get(OTHER_TYPE, 0)).toEqual(keep);
    const keys = allKeys([INVOICE_TYPE, OTHER_TYPE], 400);
    expect(diffStores(store, model, keys)).toBeNull();
    const again = FlashStore.mount(chip, { key: KEY });
    expect(diffStores(again, model, keys)).toBeNull();
    expect(again.stats().reclaimedRecords).toBe(store.stats().reclaimedRecords);
  });
});

describe("integrity: encryption, ECC, CRC, dual copies", () => {
  it("shows no plaintext payload on flash", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const secret = "INVOICE-PLAINTEXT-MARKER-0123456789";
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text(secret) }, { kind: "put", type: CRITICAL_TYPE, id: 1, value: text(secret) }]);
    const needle = Buffer.from(secret.slice(0, 12));
    for (let b = 0; b < TINY.blocks; b++) {
      for (let p = 0; p < TINY.pagesPerBlock; p++) expect(Buffer.from(chip.readPage(b, p)).indexOf(needle)).toBe(-1);
    }
  });

  it("keeps the two copies of a critical record in different blocks and repairs a destroyed copy", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const value = text("critical device state");
    store.commit([{ kind: "put", type: CRITICAL_TYPE, id: 3, value }]);
    const locs = store.locations(CRITICAL_TYPE, 3);
    expect(locs.length).toBe(2);
    expect(locs[0]!.block).not.toBe(locs[1]!.block);
    expect(store.locations(INVOICE_TYPE, 3)).toEqual([]);
    // destroy copy 0 beyond ECC: two stuck bits in the same sector
    const c0 = locs.find((l) => l.copy === 0)!;
    for (let i = 0; i < 3; i++) {
      const bit = 8 * (40 + i) + i;
      const now = (chip.readPage(c0.block, c0.page)[bit >>> 3]! >> (bit & 7)) & 1;
      chip.stickBit(c0.block, c0.page, bit, now ? 0 : 1);
    }
    const mounted = FlashStore.mount(chip, { key: KEY });
    expect(mounted.get(CRITICAL_TYPE, 3)).toEqual(value);
    expect(mounted.flashStats().repairs).toBe(1);
    const fresh = mounted.locations(CRITICAL_TYPE, 3);
    expect(fresh.every((l) => !(l.block === c0.block && l.page === c0.page))).toBe(true);
    expect(FlashStore.mount(chip, { key: KEY }).flashStats().repairs).toBe(0);
  });

  it("reports CORRUPT when both copies of a critical record are destroyed, and mount still works", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: CRITICAL_TYPE, id: 4, value: new Rng(4).bytes(1500) }]);
    const firsts = store.locations(CRITICAL_TYPE, 4).filter((l) => l.fragment === 0);
    expect(firsts.length).toBe(2);
    for (const l of firsts) {
      for (let i = 0; i < 3; i++) {
        const bit = 8 * (30 + i) + i;
        const now = (chip.readPage(l.block, l.page)[bit >>> 3]! >> (bit & 7)) & 1;
        chip.stickBit(l.block, l.page, bit, now ? 0 : 1);
      }
    }
    const mounted = FlashStore.mount(chip, { key: KEY });
    expectCode(() => mounted.get(CRITICAL_TYPE, 4), "CORRUPT");
    mounted.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("life goes on") }]);
    expect(FlashStore.mount(chip, { key: KEY }).get(INVOICE_TYPE, 1)).toEqual(text("life goes on"));
  });

  /** Ten one-page records: the first block fills and is sealed (its summary written). */
  function sealedStore() {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const values = Array.from({ length: 10 }, (_, id) => new Rng(id).bytes(400));
    values.forEach((value, id) => store.commit([{ kind: "put", type: INVOICE_TYPE, id, value }]));
    return { chip, store, values };
  }

  /** Makes bit `bit` of a page read inverted, for ever. */
  function stickInverted(chip: NandChip, block: number, page: number, bit: number): void {
    const now = (chip.readPage(block, page)[bit >>> 3]! >> (bit & 7)) & 1;
    chip.stickBit(block, page, bit, now ? 0 : 1);
  }

  it("corrects single-bit read errors, counts them and scrubs the block past the threshold", () => {
    const { chip, store, values } = sealedStore();
    const locs = [0, 1, 2].map((id) => store.locations(INVOICE_TYPE, id)[0]!);
    expect(new Set(locs.map((l) => l.block)).size).toBe(1);
    locs.forEach((l, i) => stickInverted(chip, l.block, l.page, 8 * (50 + i) + i));
    const mounted = FlashStore.mount(chip, { key: KEY });
    for (const id of [0, 1, 2]) expect(mounted.get(INVOICE_TYPE, id)).toEqual(values[id]);
    expect(mounted.stats().eccCorrections).toBe(3);
    expect(mounted.flashStats().scrubs).toBe(1);
    mounted.maintain();
    expect(mounted.locations(INVOICE_TYPE, 0)[0]!.block).not.toBe(locs[0]!.block);
    values.forEach((v, id) => expect(mounted.get(INVOICE_TYPE, id)).toEqual(v));
  });

  it("detects a corrupted record (CRC) instead of returning garbage", () => {
    const { chip, store } = sealedStore();
    const [loc] = store.locations(INVOICE_TYPE, 1);
    for (let bit = 0; bit < 6; bit++) stickInverted(chip, loc!.block, loc!.page, 8 * 60 + bit * 9);
    expectCode(() => FlashStore.mount(chip, { key: KEY }).get(INVOICE_TYPE, 1), "CORRUPT");
  });
});

describe("bad blocks and wear", () => {
  it("skips factory-bad blocks", () => {
    const chip = NandChip.memory({ geometry: SMALL_GEOMETRY, factoryBadBlocks: [0, 5, 31] });
    const store = FlashStore.format(chip, { key: KEY });
    const model = new ModelStore();
    const rng = new Rng(3);
    for (let i = 0; i < 400; i++) {
      const tx = randomTx(rng, { keys: 30 });
      store.commit(tx);
      model.commit(tx);
    }
    expect(store.flashStats().badBlocks).toEqual([0, 5, 31]);
    expect(diffStores(FlashStore.mount(chip, { key: KEY }), model, allKeys())).toBeNull();
  });

  it("a single flipped bit in a bad-block marker does not retire a good block", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("still here") }]);
    const [loc] = store.locations(INVOICE_TYPE, 1);
    chip.stickBit(loc!.block, 0, TINY.pageBytes * 8 + 3, 0);
    expect(chip.readBadMarker(loc!.block)).toBe(true); // the raw chip view sees a non-0xFF marker
    const mounted = FlashStore.mount(chip, { key: KEY });
    expect(mounted.flashStats().badBlocks).toEqual([]);
    expect(new TextDecoder().decode(mounted.get(INVOICE_TYPE, 1))).toBe("still here");
  });

  it("retires worn-out blocks without losing data", () => {
    const chip = NandChip.memory({ geometry: SMALL_GEOMETRY, endurance: 15 });
    const store = FlashStore.format(chip, { key: KEY });
    const model = new ModelStore();
    const rng = new Rng(4);
    let full = false;
    for (let i = 0; i < 6000 && !full; i++) {
      const tx = randomTx(rng, { keys: 20 });
      try {
        store.commit(tx);
        model.commit(tx);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === "STORAGE_FULL")) throw error;
        full = true;
      }
    }
    expect(store.flashStats().badBlocks.length).toBeGreaterThan(0);
    expect(diffStores(store, model, allKeys())).toBeNull();
    expect(diffStores(FlashStore.mount(chip, { key: KEY }), model, allKeys())).toBeNull();
  });

  it("keeps max/mean erase count <= 1.5 under a hot-and-cold rewrite workload", () => {
    const chip = NandChip.memory({ geometry: SMALL_GEOMETRY });
    const store = FlashStore.format(chip, { key: KEY });
    // cold data: written once, never touched again
    for (let id = 0; id < 60; id++) store.commit([{ kind: "put", type: OTHER_TYPE, id, value: new Rng(id).bytes(300) }]);
    const rng = new Rng(9);
    for (let i = 0; i < 6000; i++) store.commit([{ kind: "put", type: INVOICE_TYPE, id: rng.int(8), value: rng.bytes(400) }]);
    const s = store.flashStats();
    expect(s.eraseMean).toBeGreaterThan(20);
    expect(s.eraseMax / s.eraseMean).toBeLessThanOrEqual(1.5);
    for (let id = 0; id < 60; id++) expect(store.get(OTHER_TYPE, id)).toEqual(new Rng(id).bytes(300));
  });
});

describe("geometry", () => {
  it("page totals include the spare area", () => {
    expect(pageTotalBytes(TINY)).toBe(528);
  });
});
