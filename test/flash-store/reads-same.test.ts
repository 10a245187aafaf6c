/**
 * FlashStore.readsSameAs: a power-cut campaign compares a torn fork's records with its step
 * boundary's without reading them when both stores hold the record as the same item on the
 * same immutable page buffer. It may say "not shown" (false) for equal values; it must never
 * say true for values that differ, or for a record get() cannot read on one side only.
 */
import { describe, expect, it } from "vitest";
import { FlashStore, NandChip, tearOperationOnFork, bytesEqual, type NandOp } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { CRITICAL_TYPE, INVOICE_TYPE, KEY, OTHER_TYPE, randomTx, TINY } from "./helpers.ts";

const text = (s: string) => new TextEncoder().encode(s);
const readOnly = (chip: NandChip) => FlashStore.mount(chip, { key: KEY, readOnly: true });

function keysOf(store: FlashStore): { type: number; id: number }[] {
  return [CRITICAL_TYPE, INVOICE_TYPE, OTHER_TYPE].flatMap((type) => store.ids(type).map((id) => ({ type, id })));
}

/** get() on both sides: equal values, or the same throw (an unreadable record). */
function sameGet(a: FlashStore, b: FlashStore, type: number, id: number): boolean {
  const read = (s: FlashStore) => {
    try {
      return s.get(type, id) ?? null;
    } catch (error) {
      return error as Error;
    }
  };
  const x = read(a);
  const y = read(b);
  if (x instanceof Uint8Array && y instanceof Uint8Array) return bytesEqual(x, y);
  return x instanceof Error && y instanceof Error && x.message === y.message;
}

describe("FlashStore.readsSameAs", () => {
  it("holds for the records a fork shares, not for one rewritten since (even with the same value)", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("one") }, { kind: "put", type: CRITICAL_TYPE, id: 2, value: text("two") }]);
    const fork = chip.fork();
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("one") }]);
    const [a, b] = [readOnly(chip.fork()), readOnly(fork)];
    expect(a.readsSameAs(b, CRITICAL_TYPE, 2)).toBe(true);
    expect(b.readsSameAs(a, CRITICAL_TYPE, 2)).toBe(true);
    expect(a.readsSameAs(b, INVOICE_TYPE, 1)).toBe(false); // a new version: not shown (the values happen to be equal)
    expect(a.readsSameAs(b, INVOICE_TYPE, 99)).toBe(false); // absent on both
  });

  it("is false when the page holding the record differs in bytes, items and metadata being the same", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("invoice one") }]);
    // more records, so the block of record 1 is sealed: mount then takes its items from the summary
    for (let id = 2; id < 40; id++) store.commit([{ kind: "put", type: OTHER_TYPE, id, value: new Uint8Array(120).fill(id) }]);
    const base = readOnly(chip.fork());
    const [where] = base.locations(INVOICE_TYPE, 1);
    const damaged = chip.fork();
    const page = new Uint8Array(TINY.pageBytes + TINY.spareBytes).fill(0xff);
    page.set(damaged.media.readPage(where!.block, where!.page)!);
    for (let i = 40; i < 120; i++) page[i] = (page[i] as number) ^ 0x5a; // beyond ECC repair
    damaged.media.writePage(where!.block, where!.page, page);
    const torn = readOnly(damaged);
    expect(torn.locations(INVOICE_TYPE, 1)).toEqual(base.locations(INVOICE_TYPE, 1));
    expect(torn.readsSameAs(base, INVOICE_TYPE, 1)).toBe(false);
    expect(sameGet(torn, base, INVOICE_TYPE, 1)).toBe(false);
  });

  it("is false for a writable store, a chip with read faults, or a torn page", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: INVOICE_TYPE, id: 1, value: text("one") }]);
    const base = readOnly(chip.fork());
    expect(FlashStore.mount(chip.fork(), { key: KEY }).readsSameAs(base, INVOICE_TYPE, 1)).toBe(false);
    const faulty = chip.fork();
    faulty.stickBit(0, 0, 0, 0);
    expect(faulty.readsExact).toBe(false);
    expect(readOnly(faulty).readsSameAs(base, INVOICE_TYPE, 1)).toBe(false);
    expect(readOnly(chip.fork()).readsSameAs(base, INVOICE_TYPE, 1)).toBe(true);
  });

  it("true only where get() answers alike: random workloads, every torn operation", () => {
    const rng = new Rng(17);
    let shown = 0;
    let checked = 0;
    for (let round = 0; round < 6; round++) {
      const chip = NandChip.memory({ geometry: TINY });
      const store = FlashStore.format(chip, { key: KEY });
      for (let i = 0; i < 30; i++) store.commit(randomTx(rng, { keys: 12 }));
      const boundary = readOnly(chip.fork());
      const torn: NandChip[] = [];
      chip.setObserver((k, op: NandOp) => {
        if (op.kind !== "read") torn.push(tearOperationOnFork(chip, op, new Rng(round, k)));
      });
      for (let i = 0; i < 3; i++) store.commit(randomTx(rng, { keys: 12 }));
      chip.setObserver(null);
      for (const t of torn) {
        let mounted: FlashStore;
        try {
          mounted = readOnly(t);
        } catch {
          continue;
        }
        for (const { type, id } of [...keysOf(boundary), ...keysOf(mounted)]) {
          checked++;
          if (!mounted.readsSameAs(boundary, type, id)) continue;
          shown++;
          expect(sameGet(mounted, boundary, type, id), `round ${round} ${type}/${id}`).toBe(true);
          expect(mounted.get(type, id)).toBeDefined();
        }
      }
    }
    expect(shown).toBeGreaterThan(checked / 3); // the shortcut does apply to most records
  });
});
