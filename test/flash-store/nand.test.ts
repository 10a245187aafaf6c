import { describe, expect, it } from "vitest";
import { NandChip, PowerLossError, tearOperationOnFork, pageTotalBytes, DEFAULT_GEOMETRY, StoreError, type NandOp } from "../../src/flash-store/index.ts";
import { MemoryTrace, Rng } from "../../src/sim/index.ts";
import { TINY } from "./helpers.ts";

const PT = pageTotalBytes(TINY);
const filled = (v: number) => new Uint8Array(PT).fill(v);

describe("NandChip rules", () => {
  it("reads erased pages as 0xFF and programs only 1->0", () => {
    const chip = NandChip.memory({ geometry: TINY });
    expect(chip.readPage(0, 0).every((b) => b === 0xff)).toBe(true);
    expect(chip.program(0, 0, filled(0x0f))).toBe(true);
    expect(chip.readPage(0, 0).every((b) => b === 0x0f)).toBe(true);
  });

  it("refuses a second program of a page and out-of-order pages", () => {
    const chip = NandChip.memory({ geometry: TINY });
    chip.program(0, 2, filled(0));
    expect(() => chip.program(0, 2, filled(0))).toThrow(/out of order or twice/);
    expect(() => chip.program(0, 1, filled(0))).toThrow(/out of order/);
    expect(chip.program(0, 3, filled(0))).toBe(true);
  });

  it("erase sets the block to 0xFF, counts a cycle and allows programming again", () => {
    const chip = NandChip.memory({ geometry: TINY });
    chip.program(1, 0, filled(0));
    expect(chip.erase(1)).toBe(true);
    expect(chip.eraseCount(1)).toBe(1);
    expect(chip.readPage(1, 0).every((b) => b === 0xff)).toBe(true);
    expect(chip.program(1, 0, filled(0xaa))).toBe(true);
  });

  it("fails program and erase with a status (not a throw) once worn out", () => {
    const chip = NandChip.memory({ geometry: TINY, endurance: 3 });
    for (let i = 0; i < 3; i++) expect(chip.erase(2)).toBe(true);
    expect(chip.erase(2)).toBe(false);
    expect(chip.program(2, 0, filled(0))).toBe(false);
    chip.wearOut(3);
    expect(chip.erase(3)).toBe(false);
  });

  it("marks factory-bad blocks and fails their operations; markBad marks grown bad blocks", () => {
    const chip = NandChip.memory({ geometry: TINY, factoryBadBlocks: [4] });
    expect(chip.readBadMarker(4)).toBe(true);
    expect(chip.erase(4)).toBe(false);
    expect(chip.readBadMarker(5)).toBe(false);
    chip.program(5, 0, filled(0xff));
    chip.markBad(5);
    expect(chip.readBadMarker(5)).toBe(true);
  });

  it("rejects bad geometry and out-of-range addresses", () => {
    expect(() => NandChip.memory({ geometry: { ...TINY, pageBytes: 500 } })).toThrow(StoreError);
    expect(() => NandChip.memory({ geometry: { ...TINY, spareBytes: 2 } })).toThrow(/spareBytes/);
    const chip = NandChip.memory({ geometry: TINY });
    expect(() => chip.readPage(TINY.blocks, 0)).toThrow(RangeError);
    expect(() => chip.program(0, 0, new Uint8Array(3))).toThrow(RangeError);
  });

  it("costs kilobytes for an empty 128 MiB device", () => {
    const chip = NandChip.memory();
    expect(chip.geometry).toEqual(DEFAULT_GEOMETRY);
    expect(chip.readPage(1023, 63).length).toBe(2112);
  });
});

describe("power cuts", () => {
  it("tears a program into a subset of its bit clears, then refuses everything until repower", () => {
    for (let seed = 0; seed < 40; seed++) {
      const chip = NandChip.memory({ geometry: TINY });
      chip.program(0, 0, filled(0xf0));
      chip.erase(0);
      const target = new Rng(seed).bytes(PT);
      chip.armPowerCut(chip.opCount, new Rng(seed));
      expect(() => chip.program(0, 0, target)).toThrow(PowerLossError);
      expect(() => chip.readPage(0, 0)).toThrow(PowerLossError);
      chip.repower();
      const got = chip.readPage(0, 0);
      for (let i = 0; i < PT; i++) {
        // every bit is either still erased (1) or equals the target
        expect((got[i]! & target[i]!) === target[i]).toBe(true);
      }
      expect(() => chip.program(0, 0, target)).toThrow(/twice/); // the torn page counts as programmed
    }
  });

  it("tears an erase into a subset of bits set to 1", () => {
    for (let seed = 0; seed < 20; seed++) {
      const chip = NandChip.memory({ geometry: TINY });
      for (let p = 0; p < TINY.pagesPerBlock; p++) chip.program(3, p, filled(0x00));
      chip.armPowerCut(chip.opCount, new Rng(seed));
      expect(() => chip.erase(3)).toThrow(PowerLossError);
      chip.repower();
      expect(chip.eraseCount(3)).toBe(1);
      // erase after the tear completes it
      expect(chip.erase(3)).toBe(true);
      expect(chip.readPage(3, 5).every((b) => b === 0xff)).toBe(true);
    }
  });

  it("forks are independent copy-on-write snapshots", () => {
    const chip = NandChip.memory({ geometry: TINY });
    chip.program(0, 0, filled(0x11));
    const fork = chip.fork();
    chip.program(0, 1, filled(0x22));
    fork.program(0, 1, filled(0x33));
    chip.erase(0);
    expect(fork.readPage(0, 0)[0]).toBe(0x11);
    expect(fork.readPage(0, 1)[0]).toBe(0x33);
    expect(chip.readPage(0, 1)[0]).toBe(0xff);
    const again = NandChip.fromSnapshot(fork.snapshot());
    expect(again.readPage(0, 1)[0]).toBe(0x33);
  });

  it("calls the observer before each operation and tearOperationOnFork leaves the original untouched", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const seen: [number, NandOp["kind"]][] = [];
    let forks = 0;
    chip.setObserver((k, op) => {
      seen.push([k, op.kind]);
      if (op.kind === "program") {
        const torn = tearOperationOnFork(chip, op, new Rng(k));
        expect(torn.poweredOff).toBe(false);
        expect(torn.opCount).toBe(k + 1);
        forks++;
      }
    });
    chip.program(0, 0, filled(0));
    chip.readPage(0, 0);
    chip.erase(0);
    expect(seen).toEqual([[0, "program"], [1, "read"], [2, "erase"]]);
    expect(forks).toBe(1);
    expect(chip.readPage(0, 0)[0]).toBe(0xff);
  });
});

describe("trace", () => {
  it("emits flash events for mutating operations and a fault event for the cut", () => {
    const chip = NandChip.memory({ geometry: TINY });
    const trace = new MemoryTrace();
    chip.setTrace(trace);
    chip.program(0, 0, filled(0));
    chip.readPage(0, 0);
    chip.armPowerCut(chip.opCount, new Rng(1));
    expect(() => chip.erase(0)).toThrow(PowerLossError);
    expect(trace.events).toEqual([
      { kind: "flash", seq: 0, op: "program", block: 0, page: 0 },
      { kind: "flash", seq: 2, op: "erase", block: 0 },
      { kind: "fault", seq: 2, fault: "power-cut", detail: { op: "erase", block: 0 } },
    ]);
  });
});

describe("read faults", () => {
  it("scheduled flips hit one read; stuck bits hit every read; cells stay intact", () => {
    const chip = NandChip.memory({ geometry: TINY });
    chip.program(0, 0, filled(0x00));
    chip.scheduleReadFlip(0, 0, 9);
    expect(chip.readPage(0, 0)[1]).toBe(0x02);
    expect(chip.readPage(0, 0)[1]).toBe(0x00);
    chip.stickBit(0, 0, 0, 1);
    expect(chip.readPage(0, 0)[0]).toBe(0x01);
    expect(chip.readPage(0, 0)[0]).toBe(0x01);
  });

  it("random flips follow the probability", () => {
    const chip = NandChip.memory({ geometry: TINY });
    chip.setReadFlips(1, new Rng(1));
    let flipped = 0;
    for (let i = 0; i < 20; i++) if (chip.readPage(0, 0).some((b) => b !== 0xff)) flipped++;
    expect(flipped).toBe(20);
  });
});
