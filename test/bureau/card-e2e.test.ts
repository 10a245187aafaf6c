/**
 * The bureau against the real COS, through the host's client: sync loads the bureau's
 * secure-messaging commands into the card, the card's own export (issue + void events) is
 * uploaded as is, and the bureau's CONFIRM UPLOAD releases every event on the card.
 * No issuer agent: every bureau write the card accepts was built by src/bureau.
 */
import { afterEach, describe, expect, it } from "vitest";
import { deriveCardKey, E, encodeBatch, formatInvoiceNumber } from "../../src/tax/index.ts";
import { UkeyError } from "../../src/host/index.ts";
import { newRig, input, PROFILE, SERIAL, type Rig } from "../host/support/rig.ts";
import { call } from "./fixture.ts";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

describe("bureau <-> real Ukey (in-process COS, host client)", () => {
  it("syncs, takes the card's export with a void, and confirms it so nothing stays pending", async () => {
    rig = await newRig({ issuer: { agent: undefined } });
    rig.bureau.service.registerProfile(PROFILE, SERIAL);
    rig.bureau.service.registerDevice({
      deviceSerial: SERIAL, taxpayerId: PROFILE.taxpayer.taxpayerId, taxControlKey: Buffer.from(PROFILE.taxKey).toString("hex"),
      cardKey: Buffer.from(deriveCardKey(PROFILE.bureauMasterKey, SERIAL)).toString("hex"),
    });
    const synced = await rig.issuer.sync();
    expect(synced.messagesApplied).toBe(3);
    const purchases = (await rig.client.getPurchases()).filter((p) => p.status !== 0);
    expect(purchases.map((p) => [p.typeCode, p.invoiceCode])).toEqual(PROFILE.purchases.map((p) => [p.typeCode, p.invoiceCode]));

    const first = await rig.issuer.issue(input(10_000));
    const second = await rig.issuer.issue(input(25_000));
    await rig.issuer.voidInvoice(first.invoiceCode, first.invoiceNumber);
    const batch = await rig.client.exportUnuploaded(0);
    expect(batch.events.map((e) => e.kind)).toEqual([1, 1, 2]);
    const certificates = [await rig.client.readCert(0), await rig.client.readCert(1)].map(b64);
    const challenge = await rig.client.getChallenge();
    const reply = await call(rig.bureau, "/api/v1/upload", {
      json: {
        taxpayerId: PROFILE.taxpayer.taxpayerId, deviceSerial: SERIAL, certificates, exportBatch: b64(encodeBatch(batch.body, batch.signature)),
        challenge: Buffer.from(challenge).toString("hex"), clientTime: rig.clock.now(),
      },
    });
    expect(reply.status).toBe(200);
    const receipt = reply.json.receipt;
    expect(receipt.accepted.map((a: { invoiceNumber: string }) => a.invoiceNumber)).toEqual([first, second].map((r) => formatInvoiceNumber(r.invoiceNumber)));
    expect(receipt.voided).toEqual([{ invoiceCode: first.invoiceCode, invoiceNumber: formatInvoiceNumber(first.invoiceNumber) }]);
    expect(receipt.confirmThrough).toBe(batch.events[2]!.seq);
    expect(rig.bureau.store.invoice(first.invoiceCode, formatInvoiceNumber(first.invoiceNumber))?.voidedAt).toBeGreaterThan(0);
    expect(reply.json.issuerMessages.map((m: { name: string }) => m.name)).toEqual(["EXTERNAL_AUTHENTICATE", "CONFIRM_UPLOAD"]);
    for (const m of reply.json.issuerMessages) await rig.client.relay(new Uint8Array(Buffer.from(m.apdu, "hex")));
    const after = await rig.client.exportUnuploaded(0).catch((error: unknown) => error);
    expect(after).toBeInstanceOf(UkeyError);
    expect((after as UkeyError).code).toBe(E.DATA_NOT_EXIST);
  });

  it("a card refuses the bureau's messages built for another challenge (no replay across sessions)", async () => {
    rig = await newRig({ issuer: { agent: undefined } });
    rig.bureau.service.registerDevice({
      deviceSerial: SERIAL, taxpayerId: PROFILE.taxpayer.taxpayerId, taxControlKey: Buffer.from(PROFILE.taxKey).toString("hex"),
      cardKey: Buffer.from(deriveCardKey(PROFILE.bureauMasterKey, SERIAL)).toString("hex"),
    });
    const stale = await call(rig.bureau, `/api/v1/sync?taxpayerId=${PROFILE.taxpayer.taxpayerId}&deviceSerial=${SERIAL}&challenge=${"00".repeat(16)}`);
    await rig.client.getChallenge(); // the card's real challenge differs
    const refused = await rig.client.relay(new Uint8Array(Buffer.from(stale.json.issuerMessages[0].apdu, "hex"))).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UkeyError);
  });
});
