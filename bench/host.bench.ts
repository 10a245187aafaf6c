/**
 * Host benchmarks: offline issuing end to end through the host library — invoice input ->
 * intent row -> UKEY_Kjfp on the Ukey (full COS on the FlashStore) -> invoice row in the
 * local SQLite DB (WAL, synchronous FULL, on disk) — per second.
 *   host.issue_per_s.inproc  the Ukey behind an InProcessChannel
 *   host.issue_per_s.usbip   the same Ukey served over USB/IP (CCID) on loopback and reached
 *                            through src/transport's USB/IP client; reported only when
 *                            src/transport exports serveUsbip and openChannel.
 * Printing is off (the HTML/QR rendering is not the Ukey path).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchModule, Metric } from "./harness.ts";
import { createUkeyOnFlash, type UkeyCos } from "../src/cos/index.ts";
import { NandChip, DEFAULT_GEOMETRY } from "../src/flash-store/index.ts";
import { Rng, VirtualClock } from "../src/sim/index.ts";
import * as transport from "../src/transport/index.ts";
import { InProcessChannel, type ApduChannel } from "../src/transport/index.ts";
import { parseProfile, personalizeCard, FACTORY_ISSUER_KEY, deriveCardKey } from "../src/tax/index.ts";
import { UkeyClient, HostDb, OfflineIssuer, setPassword, type InvoiceInput } from "../src/host/index.ts";

const SAMPLE_MS = 3000;
const WARMUP = 5;
const START_SECONDS = 1_767_225_600;
const SERIAL = "UKHOSTBENCH00001";
const PASSWORD = "bench-password";

function readyCard(): { card: UkeyCos; clock: VirtualClock; userPin: string; personalize: (client: UkeyClient) => Promise<void> } {
  const profile = parseProfile(readFileSync(new URL("../fixtures/profile-default.json", import.meta.url), "utf8"));
  const clock = new VirtualClock(START_SECONDS * 1000);
  const { card } = createUkeyOnFlash({ chip: NandChip.memory({ geometry: DEFAULT_GEOMETRY }), clock, rng: new Rng(1), serial: SERIAL });
  const personalize = async (client: UkeyClient) => {
    await client.channel.powerOn();
    await personalizeCard(client.send, {
      issuerKey: FACTORY_ISSUER_KEY, cardKey: deriveCardKey(profile.bureauMasterKey, SERIAL), userPin: profile.userPin, soPin: profile.soPin,
      clockSeconds: START_SECONDS, taxKey: profile.taxKey, taxCodeAlgorithm: profile.taxCodeAlgorithm, taxpayer: profile.taxpayer,
      invoiceTypes: profile.invoiceTypes, purchases: [{ ...profile.purchases[0]!, count: 9_000_000 }],
      limits: { ...profile.limits, maxOfflineCount: 1e9, maxOfflineAmountFen: 1e15 },
    });
    await client.select();
    await client.verifyPin(profile.userPin);
    await client.generateKeyPair();
    // a DER stand-in for the device certificate (offline issuing checks its presence, not the chain)
    await client.writeCert(await client.bureauSession(deriveCardKey(profile.bureauMasterKey, SERIAL)), 0, Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01));
  };
  return { card, clock, userPin: profile.userPin, personalize };
}

const INPUT: InvoiceInput = {
  typeCode: "02601", buyerName: "张三", buyerTaxId: "", remark: "",
  lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: 10_000, amountFen: 10_000, taxRatePermille: 130, taxFen: 1300 }],
};

/** Issues for about SAMPLE_MS through `channel`; returns invoices per second. */
async function issueRate(channel: ApduChannel, personalize: (c: UkeyClient) => Promise<void>, userPin: string, clock: VirtualClock, dir: string, name: string): Promise<number> {
  const client = new UkeyClient(channel);
  await personalize(client);
  const db = new HostDb(join(dir, `${name}.db`));
  try {
    setPassword(db, new Rng(2), PASSWORD);
    const issuer = new OfflineIssuer({ client, db, clock, rng: new Rng(3) });
    await issuer.login({ password: PASSWORD, pin: userPin });
    for (let i = 0; i < WARMUP; i++) await issuer.issue(INPUT);
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < SAMPLE_MS) {
      await issuer.issue(INPUT);
      n++;
    }
    const rate = (n * 1000) / (performance.now() - start);
    if (db.invoices().length !== n + WARMUP) throw new Error("the DB does not hold every issued invoice");
    return rate;
  } finally {
    db.close();
  }
}

interface UsbipTransport {
  serveUsbip(card: UkeyCos, options: { host?: string; port?: number }): Promise<{ target: string; close(): Promise<void> }>;
  openChannel(uri: string): Promise<ApduChannel>;
}

function usbipTransport(): UsbipTransport | undefined {
  const t = transport as unknown as Partial<UsbipTransport>;
  return typeof t.serveUsbip === "function" && typeof t.openChannel === "function" ? (t as UsbipTransport) : undefined;
}

const bench: BenchModule = {
  ids: ["host.issue_per_s.inproc", "host.issue_per_s.usbip"],
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-bench-host-"));
    const out: Record<string, Metric> = {};
    try {
      const a = readyCard();
      const inproc = await issueRate(new InProcessChannel(a.card), a.personalize, a.userPin, a.clock, dir, "inproc");
      out["host.issue_per_s.inproc"] = {
        value: Math.round(inproc), unit: "invoice/s", goal: ">= 20",
        note: "input -> intent -> UKEY_Kjfp (COS on FlashStore in memory) -> SQLite row (WAL, synchronous FULL, disk)",
      };
      const usbip = usbipTransport();
      if (usbip) {
        const b = readyCard();
        const server = await usbip.serveUsbip(b.card, { host: "127.0.0.1", port: 0 });
        const channel = await usbip.openChannel(server.target);
        try {
          const rate = await issueRate(channel, b.personalize, b.userPin, b.clock, dir, "usbip");
          out["host.issue_per_s.usbip"] = { value: Math.round(rate), unit: "invoice/s", goal: ">= 10", note: `same path over USB/IP + CCID on loopback (${server.target})` };
        } finally {
          await channel.close();
          await server.close();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return out;
  },
};

export default bench;
