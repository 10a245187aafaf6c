/**
 * tearOperationOnFork tears an operation directly on the fork (no armed cut, no thrown
 * PowerLossError): the fork must hold exactly what arming a cut at that operation and
 * running it leaves, so every campaign replay id keeps meaning the same torn state.
 */
import { describe, expect, it } from "vitest";
import { NandChip, PowerLossError, pageTotalBytes, tearOperationOnFork, type NandOp } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { TINY } from "./helpers.ts";

const PT = pageTotalBytes(TINY);

/** The reference: arm a cut at the next operation of a fork and run the operation. */
function armedTear(chip: NandChip, op: NandOp, rng: Rng): NandChip {
  const fork = chip.fork();
  fork.armPowerCut(fork.opCount, rng);
  try {
    if (op.kind === "program") fork.program(op.block, op.page, op.data);
    else if (op.kind === "erase") fork.erase(op.block);
    else if (op.kind === "markBad") fork.markBad(op.block);
  } catch (error) {
    if (!(error instanceof PowerLossError)) throw error;
  }
  expect(fork.poweredOff).toBe(true);
  fork.repower();
  return fork;
}

function cells(chip: NandChip): unknown {
  const out: unknown[] = [chip.opCount];
  for (let b = 0; b < TINY.blocks; b++) {
    out.push(chip.eraseCount(b), chip.media.writePointer(b));
    for (let p = 0; p < TINY.pagesPerBlock; p++) out.push(Array.from(chip.media.readPage(b, p) ?? []).join(","));
  }
  return out;
}

describe("tearOperationOnFork", () => {
  it("leaves exactly what an armed cut at that operation leaves, for programs, erases and bad marks", () => {
    const rng = new Rng(5);
    const chip = NandChip.memory({ geometry: TINY });
    let compared = 0;
    chip.setObserver((k, op) => {
      if (op.kind === "read") return;
      expect(cells(tearOperationOnFork(chip, op, new Rng(9, k)))).toEqual(cells(armedTear(chip, op, new Rng(9, k))));
      compared++;
    });
    for (let i = 0; i < 400; i++) {
      const block = rng.int(TINY.blocks);
      const r = rng.int(10);
      if (r < 7) {
        const page = chip.media.writePointer(block);
        if (page < TINY.pagesPerBlock) chip.program(block, page, rng.bytes(PT).map((v, j) => (j > PT - 40 ? 0xff : v)));
      } else if (r < 9) chip.erase(block);
      else chip.markBad(block);
    }
    expect(compared).toBeGreaterThan(300);
  });

  it("tears a program as the contract says: old AND a seed-chosen subset of the 1->0 changes (nothing, all, a prefix, random bits)", () => {
    const rng = new Rng(6);
    const chip = NandChip.memory({ geometry: TINY });
    const modes = new Set<number>();
    for (let k = 0; k < 200; k++) {
      const block = k % TINY.blocks;
      let page = chip.media.writePointer(block);
      if (page >= TINY.pagesPerBlock) {
        chip.erase(block);
        page = 0;
      }
      const data = rng.bytes(PT);
      const old = new Uint8Array(PT).fill(0xff);
      old.set(chip.media.readPage(block, page) ?? []);
      const torn = tearOperationOnFork(chip, { kind: "program", block, page, data }, new Rng(3, k));
      // the draws the contract names, in order: mode, prefix length, then a mask in random-bits mode
      const draw = new Rng(3, k);
      const mode = draw.int(4);
      const prefix = draw.int(PT + 1);
      const mask = mode === 3 ? draw.bytes(PT) : null;
      modes.add(mode);
      const expected = old.map((o, i) => {
        const clears = o & ~(data[i] as number) & 0xff;
        const applied = mode === 1 || (mode === 2 && i < prefix) ? clears : mask ? clears & (mask[i] as number) : 0;
        return o & ~applied;
      });
      const got = new Uint8Array(PT).fill(0xff);
      got.set(torn.media.readPage(block, page) ?? []);
      expect(got).toEqual(expected);
      chip.program(block, page, data.map((v, i) => (i % 3 ? v : 0xff)));
    }
    expect(modes.size).toBe(4);
  });

  it("refuses a read (a read is never torn) and leaves the original chip as it was", () => {
    const chip = NandChip.memory({ geometry: TINY });
    chip.program(0, 0, new Uint8Array(PT).fill(0x0f));
    expect(() => tearOperationOnFork(chip, { kind: "read", block: 0, page: 0 }, new Rng(1))).toThrow(/powered off/);
    const torn = tearOperationOnFork(chip, { kind: "erase", block: 0 }, new Rng(1));
    expect(torn.opCount).toBe(chip.opCount + 1);
    expect(chip.readPage(0, 0)[0]).toBe(0x0f);
  });
});
