import { describe, expect, it } from "vitest";
import { FlashStore, NandChip, pageTotalBytes, type NandOp } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { INVOICE_TYPE, KEY, TINY } from "./helpers.ts";

/** The bytes a view stands for: past its end every byte reads 0xFF (trimmed erased bytes). */
function padded(view: Uint8Array, total: number): Uint8Array {
  const out = new Uint8Array(total).fill(0xff);
  out.set(view.subarray(0, total));
  return out;
}

describe("NandChip.readPageView", () => {
  function usedChip() {
    const chip = NandChip.memory({ geometry: TINY });
    const store = FlashStore.format(chip, { key: KEY });
    const rng = new Rng(4);
    for (let id = 0; id < 12; id++) store.commit([{ kind: "put", type: INVOICE_TYPE, id, value: rng.bytes(300) }]);
    return chip;
  }

  it("refuses a read buffer of the wrong size before the operation counts", () => {
    const chip = usedChip();
    const ops = chip.opCount;
    const reads = chip.counters.reads;
    expect(() => chip.readPageView(0, 0, new Uint8Array(pageTotalBytes(TINY) - 1))).toThrow(RangeError);
    expect(chip.opCount).toBe(ops);
    expect(chip.counters.reads).toBe(reads);
    const into = new Uint8Array(pageTotalBytes(TINY));
    expect(padded(chip.readPageView(0, 0, into), pageTotalBytes(TINY))).toEqual(chip.readPage(0, 0)); // a memory chip: its own view
  });

  it("reads what readPage reads, for programmed and erased pages, and is the same operation", () => {
    const chip = usedChip();
    const total = pageTotalBytes(TINY);
    const ops: NandOp[] = [];
    chip.setObserver((_, op) => ops.push(op));
    for (let b = 0; b < TINY.blocks; b++) {
      for (let p = 0; p < TINY.pagesPerBlock; p++) {
        const before = chip.counters.reads;
        const view = chip.readPageView(b, p);
        expect(chip.counters.reads).toBe(before + 1);
        expect(view.length).toBeLessThanOrEqual(total);
        expect(padded(view, total)).toEqual(chip.readPage(b, p));
      }
    }
    expect(ops.length).toBe(2 * TINY.blocks * TINY.pagesPerBlock);
    expect(ops.every((op) => op.kind === "read")).toBe(true);
  });

  it("applies read faults to a copy, never to the stored page", () => {
    const chip = usedChip();
    const clean = chip.readPage(0, 0);
    chip.scheduleReadFlip(0, 0, 3);
    const faulty = chip.readPageView(0, 0);
    expect(faulty.length).toBe(pageTotalBytes(TINY));
    expect(faulty[0]).toBe((clean[0] as number) ^ 0x08);
    expect(padded(chip.readPageView(0, 0), pageTotalBytes(TINY))).toEqual(clean); // the flip was for one read only
  });

  it("a store corrects a read error in its own copy: the chip still holds the original bits", () => {
    const chip = usedChip();
    const before = chip.snapshot();
    chip.setReadFlips(1, new Rng(8)); // every read flips one bit: ECC corrects each
    const store = FlashStore.mount(chip, { key: KEY });
    expect(store.flashStats().eccCorrections).toBeGreaterThan(0);
    chip.setReadFlips(0, new Rng(8));
    const fresh = NandChip.fromSnapshot(before);
    for (let b = 0; b < TINY.blocks; b++) for (let p = 0; p < TINY.pagesPerBlock; p++) expect(chip.readPage(b, p)).toEqual(fresh.readPage(b, p));
  });
});
