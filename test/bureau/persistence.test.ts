/** The bureau's database across restarts, and determinism from the seed. */
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBureau } from "../../src/bureau/index.ts";
import { Rng, VirtualClock } from "../../src/sim/index.ts";
import { call, registerDevice, START, WALL, INVOICE_CODE } from "./fixture.ts";

describe("bureau persistence and determinism", () => {
  it("keeps its PKI, devices, invoices and receipts in the database file across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-bureau-db-"));
    const dbPath = join(dir, "bureau.db");
    try {
      const clock = new VirtualClock(START);
      const first = await startBureau({ clock, tlsClock: WALL, rng: new Rng(11), dbPath });
      const device = registerDevice(first, clock, new Rng(12));
      const batch = device.batch([1, 2]);
      const receipt = await call(first, "/api/v1/upload", { json: batch });
      expect(receipt.status).toBe(200);
      const rootPem = first.sm2.rootPem;
      await first.stop();

      clock.advance(3 * 60 * 60 * 1000);
      // Another seed: the stored PKI wins, so certificates issued before the restart still chain.
      const second = await startBureau({ clock, tlsClock: WALL, rng: new Rng(99), dbPath });
      try {
        expect(second.sm2.rootPem).toBe(rootPem);
        expect(second.store.invoiceCount()).toBe(2);
        const again = await call(second, "/api/v1/upload", { json: batch });
        expect(again.json.replayed).toBe(true);
        expect(again.json.receiptText).toBe(receipt.json.receiptText);
        const more = await call(second, "/api/v1/upload", { json: device.batch([3]) });
        expect(more.json.receipt.accepted).toEqual([{ invoiceCode: INVOICE_CODE, invoiceNumber: "00000003" }]);
        expect(second.store.invoiceCount()).toBe(3);
        expect(second.service.currentCrl().crlNumber).toBe(2);
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives byte-identical receipts for the same seed, clock and uploads", async () => {
    const texts: string[] = [];
    for (let run = 0; run < 2; run++) {
      const clock = new VirtualClock(START);
      const bureau = await startBureau({ clock, tlsClock: WALL, rng: new Rng(21) });
      try {
        const device = registerDevice(bureau, clock, new Rng(22));
        const first = device.invoice(5);
        const reply = await call(bureau, "/api/v1/upload", { json: { ...device.batch([]), invoices: [first, device.invoice(6), first] } });
        expect(reply.json.receipt.accepted.map((a: { invoiceNumber: string }) => a.invoiceNumber)).toEqual(["00000005", "00000006"]);
        expect(bureau.store.invoiceCount()).toBe(2);
        texts.push(reply.json.receiptText + reply.json.signature + bureau.sm2.rootPem);
      } finally {
        await bureau.stop();
      }
    }
    expect(texts[1]).toBe(texts[0]);
  });
});
