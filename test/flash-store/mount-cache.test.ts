/**
 * A DecryptCache shared by the mounts of one chip's forks remembers the page views it found
 * valid (by identity) and the plaintexts it decrypted. These tests check that the memo never
 * vouches for bytes it has not checked: a faulted read, a torn page or a stuck bit is a new
 * array and goes through the CRC and ECC again.
 */
import { describe, expect, it } from "vitest";
import { DecryptCache, FlashStore, NandChip, tearOperationOnFork, type NandOp } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { INVOICE_TYPE, KEY, TINY } from "./helpers.ts";

function filled(): { chip: NandChip; values: Uint8Array[] } {
  const chip = NandChip.memory({ geometry: TINY });
  const store = FlashStore.format(chip, { key: KEY });
  const rng = new Rng(12);
  const values: Uint8Array[] = [];
  for (let id = 0; id < 10; id++) {
    values.push(rng.bytes(200));
    store.commit([{ kind: "put", type: INVOICE_TYPE, id, value: values[id]! }]);
  }
  return { chip, values };
}

describe("DecryptCache shared across mounts of forks", () => {
  it("a fork's faulted page is checked again (ECC corrects it) though the same page was valid before", () => {
    const { chip, values } = filled();
    const cache = new DecryptCache();
    const first = FlashStore.mount(chip.fork(), { key: KEY, cache });
    expect(first.get(INVOICE_TYPE, 3)).toEqual(values[3]);
    const [where] = first.locations(INVOICE_TYPE, 3);
    const fork = chip.fork();
    fork.scheduleReadFlip(where!.block, where!.page, 8 * 40 + 3); // one bit of the page body
    const again = FlashStore.mount(fork, { key: KEY, cache });
    expect(again.get(INVOICE_TYPE, 3)).toEqual(values[3]);
    expect(again.flashStats().eccCorrections).toBe(1);
  });

  it("three stuck bits (opposite to the cells) on a page the memo knows makes its records lost or unreadable, never stale", () => {
    const { chip, values } = filled();
    const cache = new DecryptCache();
    const first = FlashStore.mount(chip.fork(), { key: KEY, cache });
    const [where] = first.locations(INVOICE_TYPE, 5);
    for (let id = 0; id < 10; id++) first.get(INVOICE_TYPE, id);
    const fork = chip.fork();
    const page = chip.readPage(where!.block, where!.page);
    for (const bit of [8 * 100, 8 * 100 + 1, 8 * 101]) fork.stickBit(where!.block, where!.page, bit, (((page[bit >> 3] as number) >> (bit & 7)) & 1) ^ 1 ? 1 : 0);
    const outcome = (c: DecryptCache) => {
      try {
        return FlashStore.mount(fork.fork(), { key: KEY, cache: c, readOnly: true }).get(INVOICE_TYPE, 5) ?? "missing";
      } catch (error) {
        return (error as Error).message;
      }
    };
    const shared = outcome(cache);
    expect(shared).not.toEqual(values[5]); // lost or unreadable, never the bytes the memo once saw
    expect(shared).toEqual(outcome(new DecryptCache()));
  });

  it("every torn fork judged with a shared cache reads as one judged with a fresh cache", () => {
    const { chip } = filled();
    const shared = new DecryptCache();
    const store = FlashStore.mount(chip, { key: KEY, cache: shared });
    const forks: NandChip[] = [];
    chip.setObserver((k: number, op: NandOp) => {
      if (op.kind !== "read") forks.push(tearOperationOnFork(chip, op, new Rng(5, k)));
    });
    const rng = new Rng(8);
    for (let i = 0; i < 12; i++) store.commit([{ kind: "put", type: INVOICE_TYPE, id: rng.int(10), value: rng.bytes(rng.int(300)) }]);
    chip.setObserver(null);
    expect(forks.length).toBeGreaterThan(20);
    const read = (f: NandChip, cache: DecryptCache) => {
      const s = FlashStore.mount(f.fork(), { key: KEY, cache, readOnly: true });
      return Array.from({ length: 10 }, (_, id) => s.get(INVOICE_TYPE, id));
    };
    for (const f of forks) expect(read(f, shared)).toEqual(read(f, new DecryptCache()));
  });
});
