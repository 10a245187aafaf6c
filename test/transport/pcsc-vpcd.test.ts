/**
 * The virtual card in a real PC/SC stack: our vpcd card side <-> pcscd's vpcd driver <->
 * PC/SC clients: scriptor (pcsc-tools), opensc-tool (OpenSC) and our PcscChannel.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChannelError } from "../../src/transport/index.ts";
import { PcscChannel } from "../../src/transport/pcsc-channel.ts";
import { serveVpcd, type VpcdHandle } from "../../src/transport/vpcd.ts";
import { IN_CI, needTools } from "../support/tools.ts";
import { otherPcscdRunning, startPcscd, VPCD_DRIVER, VPCD_READER, vpcdAddress, type Pcscd } from "./support/pcscd.ts";
import { apdu, runScenario } from "./support/scenario.ts";
import { INS_ECHO, INS_MUTE, TestCard, hexOf } from "./support/test-card.ts";
import { UkeyClient } from "../../src/host/index.ts";
import { decodeInvoice } from "../../src/tax/index.ts";
import { openChannel } from "../../src/transport/index.ts";
import { draft, PROFILE, readyCard } from "../cos/helpers.ts";

/** vpcd's second reader (CHANNELID + 1) carries the real chip OS. */
const COS_READER = "Virtual PCD 00 01";

function ready(): boolean {
  if (!needTools("pcscd", "scriptor", "opensc-tool")) return false;
  const problem = !existsSync(VPCD_DRIVER) ? `vpcd driver ${VPCD_DRIVER} missing (package vsmartcard-vpcd)` : otherPcscdRunning();
  if (!problem) return true;
  if (IN_CI) throw new Error(problem);
  console.warn(`skipping: ${problem}`);
  return false;
}

const ok = ready();

function run(cmd: string, args: string[], timeout = 15_000): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { timeout }, (_e, out, err) => resolve(`${out}\n${err}`)));
}

/** PC/SC clients race pcscd's card polling: retry while the reader says "no card". */
async function runWithCard(cmd: string, args: string[]): Promise<string> {
  let out = "";
  for (let i = 0; i < 20; i++) {
    out = await run(cmd, args);
    if (!/No smart ?card inserted|Card not present|card is not present/i.test(out)) return out;
    await new Promise((r) => setTimeout(r, 250));
  }
  return out;
}

describe.skipIf(!ok)("pcscd + vpcd with our card", () => {
  let pcscd: Pcscd;
  let vpcd: VpcdHandle;
  let cosVpcd: VpcdHandle;
  const card = new TestCard();

  beforeAll(async () => {
    pcscd = await startPcscd();
    vpcd = await serveVpcd(card, { host: vpcdAddress(), port: pcscd.port, reconnectDelayMs: 100 });
    const rig = await readyCard();
    rig.clock.advance(3_600_000);
    rig.card.powerOff();
    cosVpcd = await serveVpcd(rig.card, { host: vpcdAddress(), port: pcscd.port + 1, reconnectDelayMs: 100 });
    await vpcd.connected();
    await cosVpcd.connected();
  }, 30_000);

  afterAll(async () => {
    await vpcd?.close();
    await cosVpcd?.close();
    await pcscd?.stop();
  });

  it("the chip OS through pcscd: select, PIN, issue an invoice, read it back (UkeyClient on pcsc:)", async () => {
    const channel = await openChannel(`pcsc:${COS_READER}`);
    const client = new UkeyClient(channel);
    await client.connect();
    await client.verifyPin(PROFILE.userPin);
    const issued = await client.issue(draft({ buyerName: "丁公司 vpcd" }));
    const invoice = decodeInvoice(issued.invoice);
    const stored = await client.readInvoice(invoice.invoiceCode, invoice.invoiceNumber);
    expect(hexOf(stored.issued.invoice)).toBe(hexOf(issued.invoice));
    expect(hexOf(stored.issued.signature)).toBe(hexOf(issued.signature));
    await client.disconnect();
    await channel.close();
  }, 30_000);

  it("scriptor (pcsc-tools) selects and exchanges APDUs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-scriptor-"));
    const file = join(dir, "commands");
    writeFileSync(file, "00 A4 04 00 09 A0 00 00 06 66 55 4B 45 59\n00 20 00 01 06 31 32 33 34 35 36\n80 EE 00 00 03 0A 0B 0C 00\n00 A4 04 00 05 A0 00 00 00 01\n");
    const out = await runWithCard("scriptor", ["-r", VPCD_READER, file]);
    rmSync(dir, { recursive: true, force: true });
    expect(out.match(/< (.. )*90 00 : Normal processing/g)?.length).toBe(3);
    expect(out).toMatch(/< 0A 0B 0C 90 00/);
    expect(out).toMatch(/< 6A 82 :/);
  }, 30_000);

  it("opensc-tool (OpenSC) sends APDUs", async () => {
    const out = await runWithCard("opensc-tool", ["-r", VPCD_READER, "-s", "00 A4 04 00 09 A0 00 00 06 66 55 4B 45 59", "-s", "80 EE 00 00 02 CA FE 00"]);
    expect(out).toMatch(/Received \(SW1=0x90, SW2=0x00\)/);
    expect(out).toMatch(/CA FE/);
  }, 30_000);

  it("PcscChannel carries the APDU scenario, short and extended", async () => {
    const channel = await PcscChannel.open(VPCD_READER);
    await runScenario(channel);
    await channel.close();
  }, 30_000);

  it("a card that goes mute is NO_CARD; after vpcd reinserts it, power-on works again", async () => {
    const channel = await PcscChannel.open(VPCD_READER);
    await channel.powerOn();
    const error = await channel.transmit(Uint8Array.of(0x80, INS_MUTE, 0, 0)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelError);
    expect((error as ChannelError).code).toBe("NO_CARD");
    await vpcd.connected();
    let atr: Uint8Array | undefined;
    for (let i = 0; i < 40 && !atr; i++) {
      atr = await channel.powerOn().catch(() => undefined);
      if (!atr) await new Promise((r) => setTimeout(r, 250));
    }
    expect(atr).toBeDefined();
    expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(4))))).toBe("049000");
    await channel.close();
  }, 30_000);

  it("an unknown reader is UNAVAILABLE", async () => {
    await expect(PcscChannel.open("No Such Reader", { timeoutMs: 500 })).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});
