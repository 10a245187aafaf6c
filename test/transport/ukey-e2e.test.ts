/**
 * The real chip OS over every transport available here: one personalized Ukey, served
 * in turn over USB/IP and serial (socat pty pair), driven by the host's UkeyClient through
 * openChannel: select, PIN, issue an invoice, read it back. The in-process channel runs the
 * same steps as the reference. The PC/SC leg is in pcsc-vpcd.test.ts, which owns the one
 * pcscd a machine can run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UkeyClient } from "../../src/host/index.ts";
import { decodeInvoice } from "../../src/tax/index.ts";
import { InProcessChannel, openChannel, serveSerial, serveUsbip, type ApduChannel } from "../../src/transport/index.ts";
import { needTools } from "../support/tools.ts";
import { draft, PROFILE, readyCard, type Rig } from "../cos/helpers.ts";
import { hexOf } from "./support/test-card.ts";
import { startPtyPair } from "./support/pty.ts";

let rig: Rig;
const issuedNumbers: number[] = [];

beforeAll(async () => {
  rig = await readyCard();
  rig.clock.advance(3_600_000);
  rig.card.powerOff();
}, 60_000);

/** The scenario: connect (power on + SELECT), VERIFY PIN, issue, read back, power off. */
export async function issueAndReadBack(channel: ApduChannel, buyerName: string): Promise<void> {
  const client = new UkeyClient(channel);
  const atr = await client.connect();
  expect(atr.length).toBeGreaterThan(2);
  await client.verifyPin(PROFILE.userPin);
  const issued = await client.issue(draft({ buyerName }));
  const invoice = decodeInvoice(issued.invoice);
  expect(invoice.buyerName).toBe(buyerName);
  expect(issuedNumbers).not.toContain(invoice.invoiceNumber);
  issuedNumbers.push(invoice.invoiceNumber);
  const stored = await client.readInvoice(invoice.invoiceCode, invoice.invoiceNumber);
  expect(hexOf(stored.issued.invoice)).toBe(hexOf(issued.invoice));
  expect(stored.issued.taxCode).toBe(issued.taxCode);
  expect(hexOf(stored.issued.signature)).toBe(hexOf(issued.signature));
  await client.disconnect();
  await channel.close();
}

describe("the chip OS over every transport", () => {
  it("in-process (reference)", async () => {
    await issueAndReadBack(new InProcessChannel(rig.card), "甲公司 in-process");
  });

  it("USB/IP: usbip://  -> CCID -> COS", async () => {
    const server = await serveUsbip(rig.card, { port: 0 });
    try {
      await issueAndReadBack(await openChannel(server.target), "乙公司 usbip");
    } finally {
      await server.close();
    }
  });

  it.skipIf(!needTools("socat"))("serial: serial:/dev/pts/N over a socat pty pair", async () => {
    const pty = await startPtyPair();
    const device = await serveSerial(rig.card, { path: pty.a });
    try {
      await issueAndReadBack(await openChannel(`serial:${pty.b}?baud=115200`), "丙公司 serial");
    } finally {
      await device.close();
      await pty.stop();
    }
  });

  afterAll(() => {
    expect(new Set(issuedNumbers).size).toBe(issuedNumbers.length);
  });
});
