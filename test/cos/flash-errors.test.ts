/**
 * Flash read errors the ECC cannot correct reach the host as a memory failure (6581), never
 * as an internal error (6F00) and never as data.
 */
import { describe, expect, it } from "vitest";
import { INS, SW, call, encodeInvoiceKey, decodeStored, decodeInvoice } from "../../src/tax/index.ts";
import { RT, createUkeyOnFlash } from "../../src/cos/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { readyFlashCard, issue, cmd, raw, login, type Rig } from "./helpers.ts";

const TWO_BITS_IN_FIRST_SECTOR = [0, 1];
const INVOICES_TO_CLOSE_THE_BLOCK = 24;

describe("uncorrectable flash errors", () => {
  it("a double-bit error under an invoice answers 6581 on READ INVOICE; a clean read still works", async () => {
    const r = await readyFlashCard();
    const issued = await issue(r);
    // Fill the block past this invoice, so a fresh mount does not rescan (and cache) its page.
    const later = [];
    for (let i = 0; i < INVOICES_TO_CLOSE_THE_BLOCK; i++) later.push(await issue(r));
    const invoice = decodeInvoice(issued.invoice);
    const invoiceKey = encodeInvoiceKey(invoice.invoiceCode, invoice.invoiceNumber);
    const [where] = r.flash.store().locations(RT.INVOICE, issued.seq);
    expect(where).toBeDefined();
    const lastBlock = r.flash.store().locations(RT.INVOICE, (later.at(-1) as { seq: number }).seq)[0]?.block;
    expect(lastBlock).not.toBe(where!.block);

    // A second card on the same chip: a fresh mount, nothing cached from the issue.
    const again = createUkeyOnFlash({ chip: r.chip, clock: r.clock, rng: new Rng(2), secrets: r.secrets, serial: "UK00000000000001" });
    again.card.powerOn();
    const rig: Rig = { ...r, card: again.card, send: async (apdu) => again.card.process(apdu) };
    await login(rig);
    const clean = decodeStored(await call(rig.send, cmd(INS.READ_INVOICE, invoiceKey, 65536)));
    expect(decodeInvoice(clean.issued.invoice).invoiceNumber).toBe(invoice.invoiceNumber);

    const third = createUkeyOnFlash({ chip: r.chip, clock: r.clock, rng: new Rng(3), secrets: r.secrets, serial: "UK00000000000001" });
    third.card.powerOn();
    const torn: Rig = { ...r, card: third.card, send: async (apdu) => third.card.process(apdu) };
    await login(torn);
    for (const bit of TWO_BITS_IN_FIRST_SECTOR) r.chip.scheduleReadFlip(where!.block, where!.page, bit);
    expect(raw(torn, cmd(INS.READ_INVOICE, invoiceKey, 65536)).sw).toBe(SW.MEMORY_FAILURE);
  });
});
