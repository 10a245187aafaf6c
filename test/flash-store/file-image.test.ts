import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createImage, FlashStore, openImage, SMALL_GEOMETRY, StoreError, TINY_FOR_TESTS, type StoreErrorCode } from "./file-helpers.ts";
import { NandChip, TAIL_READ_AHEAD_PAGES } from "../../src/flash-store/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { invoiceValue, WRITER_KEY } from "./fixtures/writer-shared.ts";
import { KEY } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "ukeysim-flash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectCode(fn: () => unknown, code: StoreErrorCode, pattern?: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe(code);
    if (pattern) expect((error as StoreError).message).toMatch(pattern);
    return;
  }
  throw new Error(`expected StoreError ${code}`);
}

describe("file image", () => {
  it("persists a store across close and reopen, with the secure area", () => {
    const path = join(dir, "persist.img");
    const chip = createImage(path, { geometry: TINY_FOR_TESTS });
    const store = FlashStore.format(chip, { key: KEY });
    store.commit([{ kind: "put", type: 0x50, id: 1, value: new Uint8Array([1, 2, 3]) }]);
    chip.writeSecureArea(10, new Uint8Array([9, 9, 9]));
    chip.close();
    const again = openImage(path);
    expect(FlashStore.mount(again, { key: KEY }).get(0x50, 1)).toEqual(new Uint8Array([1, 2, 3]));
    expect(again.readSecureArea().subarray(10, 13)).toEqual(new Uint8Array([9, 9, 9]));
    expect(() => again.writeSecureArea(4095, new Uint8Array(2))).toThrow(RangeError);
    again.close();
  });

  it("an empty 128 MiB image is sparse on disk", () => {
    const path = join(dir, "big.img");
    const chip = createImage(path);
    FlashStore.format(chip, { key: KEY });
    chip.close();
    const st = statSync(path);
    expect(st.size).toBeGreaterThan(128 * 2 ** 20);
    expect(st.blocks * 512).toBeLessThan(4 * 2 ** 20);
  });

  it("rejects bad images with clear errors", () => {
    const good = join(dir, "good.img");
    createImage(good, { geometry: TINY_FOR_TESTS }).close();
    const bytes = readFileSync(good);
    const variant = (name: string, mutate: (b: Buffer) => Buffer) => {
      const p = join(dir, name);
      const fd = openSync(p, "w");
      writeSync(fd, mutate(Buffer.from(bytes)));
      closeSync(fd);
      return p;
    };
    expectCode(() => openImage(variant("magic.img", (b) => { b[0] = 0x41; return b; })), "BAD_IMAGE", /magic/);
    expectCode(() => openImage(variant("crc.img", (b) => { b[13] = b[13]! ^ 1; return b; })), "BAD_IMAGE", /CRC/);
    expectCode(() => openImage(variant("short.img", (b) => b.subarray(0, 30))), "BAD_IMAGE", /truncated/);
    const cut = variant("cut.img", (b) => b);
    truncateSync(cut, bytes.length - 100);
    expectCode(() => openImage(cut), "BAD_IMAGE", /truncated or padded/);
    expectCode(() => openImage(good, { geometry: SMALL_GEOMETRY }), "BAD_GEOMETRY", /expected/);
    expectCode(() => openImage(join(dir, "missing.img")), "BAD_IMAGE", /does not exist/);
    expectCode(() => createImage(good), "BAD_IMAGE", /exists/);
    expectCode(() => FlashStore.mount(openImage(good), { key: KEY }), "BAD_IMAGE", /not formatted/);
  });

  it("survives random garbage in the data area without crashing", () => {
    const path = join(dir, "garbage.img");
    const chip = createImage(path, { geometry: TINY_FOR_TESTS });
    const store = FlashStore.format(chip, { key: KEY });
    for (let i = 0; i < 30; i++) store.commit([{ kind: "put", type: 0x50, id: i, value: new Rng(i).bytes(200) }]);
    chip.close();
    const size = statSync(path).size;
    const rng = new Rng(99);
    const fd = openSync(path, "r+");
    for (let i = 0; i < 200; i++) writeSync(fd, rng.bytes(8), 0, 8, 12288 + rng.int(size - 12288 - 8));
    closeSync(fd);
    const again = openImage(path);
    try {
      const s = FlashStore.mount(again, { key: KEY });
      for (let i = 0; i < 30; i++) {
        try {
          s.get(0x50, i);
        } catch (error) {
          expect(error).toBeInstanceOf(StoreError);
        }
      }
    } catch (error) {
      expect(error).toBeInstanceOf(StoreError);
    }
    again.close();
  });
});

describe("SIGKILL of a writer process", () => {
  const KILLS = process.env.UKEYSIM_LONG ? 60 : 8;
  const writer = join(import.meta.dirname, "fixtures", "writer.ts");

  function runUntilKilled(path: string, afterMs: number): Promise<{ lastDone: number; lastBegin: number; ready: number }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", writer, path], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      let killed = false;
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (!killed && out.includes("DONE")) {
          killed = true;
          setTimeout(() => child.kill("SIGKILL"), afterMs);
        }
      });
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.on("close", (code, signal) => { // "close": stdout fully read (exit can come first)
        if (signal !== "SIGKILL") return reject(new Error(`writer exited ${code}: ${err}`));
        const ready = Number(/READY (\d+)/.exec(out)?.[1] ?? NaN);
        const dones = [...out.matchAll(/DONE (\d+)/g)].map((m) => Number(m[1]));
        const begins = [...out.matchAll(/BEGIN (\d+)/g)].map((m) => Number(m[1]));
        resolve({ lastDone: dones.length ? dones[dones.length - 1]! : ready - 1, lastBegin: begins.length ? begins[begins.length - 1]! : ready - 1, ready });
      });
    });
  }

  it(`keeps every committed transaction and no torn one across ${KILLS} kills`, async () => {
    const path = join(dir, "killed.img");
    const rng = new Rng(2026);
    let total = 0;
    for (let k = 0; k < KILLS; k++) {
      const { lastDone, lastBegin, ready } = await runUntilKilled(path, rng.range(0, 250));
      const chip = openImage(path);
      const store = FlashStore.mount(chip, { key: WRITER_KEY });
      const c = store.get(0x10, 0);
      const n = c ? new DataView(c.buffer, c.byteOffset).getUint32(0) : 0;
      expect(n, `kill ${k}: counter ${n}, last logged commit ${lastDone}`).toBeGreaterThanOrEqual(lastDone);
      expect(n).toBeLessThanOrEqual(lastDone + 1);
      expect(n).toBeLessThanOrEqual(lastBegin); // never a transaction that had not begun
      expect(n).toBeGreaterThanOrEqual(ready - 1);
      for (let i = Math.max(1, n - 49); i <= n; i++) expect(store.get(0x50, i % 50)).toEqual(invoiceValue(i));
      chip.close();
      total = n;
    }
    expect(total).toBeGreaterThanOrEqual(KILLS); // every run committed at least one transaction
  }, process.env.UKEYSIM_LONG ? 0 : 120_000);
});

describe("file image tail read-ahead", () => {
  it("forgets what it read ahead when a block is erased or programmed", () => {
    const geometry = { pageBytes: 512, spareBytes: 16, pagesPerBlock: 16, blocks: 8 };
    const path = join(dir, "ahead.img");
    const file = createImage(path, { geometry, overwrite: true });
    const pageTotal = geometry.pageBytes + geometry.spareBytes;
    const rng = new Rng(5);
    const last = geometry.pagesPerBlock - 1;
    for (let p = 0; p <= last; p++) file.program(1, p, rng.bytes(pageTotal));
    const tail = file.readPage(1, last); // reads ahead: the tail of block 1 and page 0 of block 2
    file.erase(1);
    expect(file.readPage(1, last)).toEqual(new Uint8Array(pageTotal).fill(0xff));
    expect(file.readPage(1, last)).not.toEqual(tail);
    file.readPage(1, last); // read ahead again (block 1 erased, block 2 page 0 erased)
    const header = rng.bytes(pageTotal);
    file.program(2, 0, header);
    expect(file.readPage(2, 0)).toEqual(header);
    file.close();
  });


  it("reads exactly what a memory chip reads, whatever order programs, erases and reads come in", () => {
    const geometry = { pageBytes: 512, spareBytes: 16, pagesPerBlock: 16, blocks: 8 };
    const path = join(dir, "tail.img");
    const file = createImage(path, { geometry, overwrite: true });
    const memory = NandChip.memory({ geometry });
    const rng = new Rng(31);
    const next = new Array<number>(geometry.blocks).fill(0);
    const pageTotal = geometry.pageBytes + geometry.spareBytes;
    const into = new Uint8Array(pageTotal);
    for (let step = 0; step < 3000; step++) {
      const block = rng.int(geometry.blocks);
      const r = rng.int(10);
      if (r < 5 && (next[block] as number) < geometry.pagesPerBlock) {
        const data = new Uint8Array(pageTotal).fill(0xff);
        if (rng.int(8) !== 0) data.set(rng.bytes(1 + rng.int(pageTotal))); // else a program of nothing: the page stays erased
        const page = next[block] as number;
        expect(file.program(block, page, data)).toBe(memory.program(block, page, data));
        next[block] = page + 1;
      } else if (r === 5 && rng.int(3) === 0) {
        // Rare, so blocks fill into their tail between erases.
        expect(file.erase(block)).toBe(memory.erase(block));
        next[block] = 0;
      } else {
        // Mostly the tail, backwards from the last page, as a mount reads it, and the next
        // block's header page (read ahead with the tail).
        const page = r < 8 ? geometry.pagesPerBlock - 1 - rng.int(TAIL_READ_AHEAD_PAGES + 2) : rng.int(geometry.pagesPerBlock);
        expect(file.readPage(block, page), `step ${step} block ${block} page ${page}`).toEqual(memory.readPage(block, page));
        // Read into the caller's buffer (as a mount does): the same bytes, in `into` for a file.
        const view = file.readPageView(block, page, into);
        const full = new Uint8Array(pageTotal).fill(0xff);
        full.set(view);
        expect(full, `step ${step} block ${block} page ${page} into`).toEqual(memory.readPage(block, page));
        expect(view.length === 0 || view === into).toBe(true);
        expect(view.length === 0, `step ${step} block ${block} page ${page} erased`).toBe(memory.readPageView(block, page).length === 0);
        if (r < 8 && block + 1 < geometry.blocks && rng.int(2) === 0) expect(file.readPage(block + 1, 0), `step ${step} block ${block + 1} page 0`).toEqual(memory.readPage(block + 1, 0));
      }
    }
    file.close();
  });
});
