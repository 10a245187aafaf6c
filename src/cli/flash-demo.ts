/**
 * ukeysim flash-demo [--seed N] [--image PATH]: writes invoice transactions to a small flash
 * image, cuts the power in the middle of a multi-record transaction, "restarts" (reopens the
 * image), and shows that the interrupted transaction survived entirely or not at all.
 */
import type { Command } from "commander";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createImage, FlashStore, NandChip, formatInspectReport, inspectChip, openImage, SMALL_GEOMETRY, StoreError, type TxOp } from "../flash-store/index.ts";
import { parseSeed, Rng } from "../sim/index.ts";

const DEFAULT_SEED = 20260101;
const COUNTER_TYPE = 0x10; // critical: two copies
const INVOICE_TYPE = 0x50;
const COMMITTED_TX = 5;
const INVOICES_IN_CUT_TX = 3;

function invoice(n: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ no: n, amountFen: 10_000 + n * 137, buyer: `buyer-${n}` }).padEnd(400, " "));
}

function counter(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function txFor(first: number, count: number): TxOp[] {
  const ops: TxOp[] = [];
  for (let n = first; n < first + count; n++) ops.push({ kind: "put", type: INVOICE_TYPE, id: n, value: invoice(n) });
  ops.push({ kind: "put", type: COUNTER_TYPE, id: 0, value: counter(first + count - 1) });
  return ops;
}

export function registerFlashDemo(program: Command): void {
  program
    .command("flash-demo")
    .description("power-cut a flash transaction mid-write, restart, and show that it is all-or-nothing")
    .option("--seed <n>", "seed for the cut point and the torn bits", String(DEFAULT_SEED))
    .option("--image <path>", "image file to write (default: a new temporary file)")
    .action((options: { seed: string; image?: string }) => {
      const seed = parseSeed(options.seed);
      const rng = new Rng(seed);
      const key = rng.fork("key").bytes(16);
      const path = options.image ?? join(mkdtempSync(join(tmpdir(), "ukeysim-demo-")), "ukey.img");
      console.log(`flash-demo: seed ${seed}, image ${path}`);
      const prepare = (chip: NandChip, log: boolean): FlashStore => {
        const store = FlashStore.format(chip, { key });
        for (let n = 1; n <= COMMITTED_TX; n++) {
          store.commit(txFor(n, 1));
          if (log) console.log(`  committed tx ${n}: invoice ${n}, counter = ${n}`);
        }
        return store;
      };
      const next = COMMITTED_TX + 1;
      // Dry run on a memory chip with the same history (the store is deterministic) to learn
      // how many flash operations the next transaction takes.
      const dry = NandChip.memory({ geometry: SMALL_GEOMETRY });
      const dryStore = prepare(dry, false);
      const before = dry.opCount;
      dryStore.commit(txFor(next, INVOICES_IN_CUT_TX));
      const span = dry.opCount - before;
      const chip = createImage(path, { geometry: SMALL_GEOMETRY, overwrite: options.image !== undefined });
      const store = prepare(chip, true);
      const cutAt = chip.opCount + rng.int(span);
      console.log(`  tx ${next}: invoices ${next}..${next + INVOICES_IN_CUT_TX - 1} + counter = ${next + INVOICES_IN_CUT_TX - 1}, ${span} flash operations; power cut at operation ${cutAt}`);
      chip.armPowerCut(cutAt, rng.fork("tear"));
      try {
        store.commit(txFor(next, INVOICES_IN_CUT_TX));
        console.log("  (the cut fell after the commit completed)");
      } catch (error) {
        if (!(error instanceof StoreError && error.code === "POWER_LOST")) throw error;
        console.log(`  POWER LOST: ${error.message}`);
      }
      chip.close();
      console.log("restart: reopening the image and mounting the store");
      const again = openImage(path);
      const mounted = FlashStore.mount(again, { key });
      const c = mounted.get(COUNTER_TYPE, 0);
      const count = c ? new DataView(c.buffer, c.byteOffset).getUint32(0) : 0;
      const present = mounted.ids(INVOICE_TYPE);
      console.log(`  counter = ${count}; invoices present: ${present.join(", ")}`);
      const cutTx = Array.from({ length: INVOICES_IN_CUT_TX }, (_, i) => next + i);
      const survived = cutTx.filter((n) => present.includes(n)).length;
      const verdict = survived === 0 && count === next - 1 ? "NONE of it (rolled back)" : survived === INVOICES_IN_CUT_TX && count === next + INVOICES_IN_CUT_TX - 1 ? "ALL of it (committed)" : "PART of it: BUG";
      console.log(`  the interrupted transaction survived: ${verdict}`);
      console.log("");
      console.log(formatInspectReport(inspectChip(again)));
      again.close();
      console.log("");
      console.log(`replay: ukeysim flash-demo --seed ${seed}`);
      if (verdict.endsWith("BUG")) process.exitCode = 1;
    });
}
