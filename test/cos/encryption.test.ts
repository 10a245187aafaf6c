/** The secure area is encrypted: flash holds no plaintext taxpayer or buyer data, and tampered records are refused. */
import { describe, expect, it } from "vitest";
import { INS, SW } from "../../src/tax/index.ts";
import { RT } from "../../src/cos/index.ts";
import { ModelStore } from "../../src/flash-store/index.ts";
import { readyCard, issue, draft, PROFILE, raw, cmd } from "./helpers.ts";

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay).includes(Buffer.from(needle));
}

describe("user data at rest", () => {
  it("no record in flash contains the taxpayer, buyer or item text in the clear", async () => {
    const store = new ModelStore();
    const r = await readyCard(71, store);
    await issue(r, draft({ buyerName: "李四采购有限公司", buyerTaxId: "91110000ABCDEFGH12", remark: "机密备注" }));
    const secrets = ["91370100MA3C123456", PROFILE.taxpayer.taxpayerName, "acct01", "李四采购有限公司", "91110000ABCDEFGH12", "机密备注", "办公用品", "137001900111", PROFILE.userPin];
    let records = 0;
    for (let t = 0; t < 256; t++) {
      for (const id of store.ids(t)) {
        const v = store.get(t, id) as Uint8Array;
        records++;
        for (const s of secrets) expect(contains(v, new TextEncoder().encode(s)), `record ${t}/${id} holds "${s}"`).toBe(false);
      }
    }
    expect(records).toBeGreaterThan(8);
  });
  it("a record altered in flash, or moved to another id, fails authentication (6581), it is not believed", async () => {
    const store = new ModelStore();
    const r = await readyCard(72, store);
    await issue(r);
    await issue(r);
    const a = store.get(RT.INVOICE, 1) as Uint8Array;
    // move invoice 1's sealed bytes to id 2
    store.commit([{ kind: "put", type: RT.INVOICE, id: 2, value: a }]);
    r.card.powerOn();
    raw(r, new Uint8Array([0, 0xa4, 4, 0, 12, 0xa0, 0, 0, 8, 0x86, 0x54, 0x41, 0x58, 0x55, 0x4b, 0x45, 0x59]));
    raw(r, new Uint8Array([0, 0x20, 0, 1, 8, ...new TextEncoder().encode(PROFILE.userPin)]));
    const { encodeInvoiceKey } = await import("../../src/tax/index.ts");
    expect(raw(r, cmd(INS.READ_INVOICE, encodeInvoiceKey("137001900111", 1001), 256)).sw).toBe(SW.MEMORY_FAILURE);
    // a flipped bit in the counters record: the card refuses to run on it
    const c = (store.get(RT.COUNTERS, 0) as Uint8Array).slice();
    c[10] = (c[10] as number) ^ 1;
    store.commit([{ kind: "put", type: RT.COUNTERS, id: 0, value: c }]);
    r.card.powerOn();
    expect(raw(r, cmd(INS.GET_DEVICE_INFO, undefined, 64)).sw).toBe(SW.MEMORY_FAILURE);
  });
});

describe("the NAND image of a used Ukey", () => {
  it("holds no plaintext taxpayer, buyer or item data (FlashStore encrypts with the key from the MCU secure area)", async () => {
    const { readyFlashCard } = await import("./helpers.ts");
    const { saveImage } = await import("../../src/flash-store/index.ts");
    const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const r = await readyFlashCard(73);
    for (let i = 0; i < 5; i++) await issue(r, draft({ buyerName: "王五贸易有限公司", buyerTaxId: "91440300XYZ0000001", remark: "仅供测试" }));
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-scan-"));
    try {
      const path = join(dir, "used.img");
      saveImage(r.chip, path);
      const image = readFileSync(path);
      expect(image.length).toBeGreaterThan(100_000);
      for (const s of ["91370100MA3C123456", PROFILE.taxpayer.taxpayerName, "acct01", "王五贸易有限公司", "91440300XYZ0000001", "仅供测试", "办公用品", "137001900111", PROFILE.userPin]) {
        expect(image.includes(Buffer.from(s, "utf8")), `image holds "${s}"`).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("createUkey({ image })", () => {
  it("keeps a card in an image file across card objects, and close() releases it", async () => {
    const { createUkey } = await import("../../src/cos/index.ts");
    const { Rng, VirtualClock } = await import("../../src/sim/index.ts");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const { SMALL_GEOMETRY } = await import("../../src/flash-store/index.ts");
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-img-"));
    try {
      const image = join(dir, "k.img");
      const clock = new VirtualClock();
      const a = createUkey({ image, create: true, geometry: { ...SMALL_GEOMETRY, blocks: 64 }, clock, rng: new Rng(1) });
      a.powerOn();
      const serial = a.serial;
      a.close();
      const b = createUkey({ image, clock, rng: new Rng(2) });
      b.powerOn();
      expect(b.serial).toBe(serial);
      expect(raw({ card: b } as never, new Uint8Array([0, 0xa4, 4, 0, 12, 0xa0, 0, 0, 8, 0x86, 0x54, 0x41, 0x58, 0x55, 0x4b, 0x45, 0x59])).sw).toBe(SW.OK);
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
