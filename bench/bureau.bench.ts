/**
 * bureau.upload_per_s: invoices verified (device chain + CRL, SM2 signature, tax control
 * code, stock, uniqueness) and stored (SQLite, WAL, synchronous FULL, one transaction per
 * batch) per second (src/tax canonical invoices, 1 line each), uploaded over HTTPS loopback in batches by one keep-alive client.
 */
import { Agent, request } from "node:https";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchModule } from "./harness.ts";
import { signInvoiceAsDevice, startBureau } from "../src/bureau/index.ts";
import { sm2GenerateKeyPair } from "../src/crypto/index.ts";
import type { Invoice } from "../src/tax/index.ts";
import { Rng, VirtualClock } from "../src/sim/index.ts";

const BATCH = 100;
const BATCHES = 30;
const TAXPAYER = "91370100MA3C0000X1";
const DEVICE = "UK0001";
const CODE = "037001900111";

function post(agent: Agent, url: string, ca: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL("/api/v1/upload", url), {
      method: "POST", agent, ca, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const bench: BenchModule = {
  ids: ["bureau.upload_per_s"],
  async run() {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-bench-bureau-"));
    const clock = new VirtualClock(Date.UTC(2026, 0, 1, 8));
    const bureau = await startBureau({ clock, tlsClock: { now: () => Date.now() }, rng: new Rng(1), dbPath: join(dir, "bureau.db") });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const rng = new Rng(2);
      bureau.service.registerTaxpayer({
        taxpayerId: TAXPAYER, name: "bench", limits: { offlineHours: 72, maxInvoiceFen: 1e9, maxOfflineTotalFen: 1e12, maxOfflineCount: 1e6 },
        stock: [{ invoiceCode: CODE, startNumber: 1, count: BATCH * BATCHES }],
      });
      const taxControlKey = rng.bytes(16);
      bureau.service.registerDevice({ deviceSerial: DEVICE, taxpayerId: TAXPAYER, taxControlKey: Buffer.from(taxControlKey).toString("hex") });
      const keys = sm2GenerateKeyPair(rng);
      const { chain } = bureau.service.issueDeviceCertificate({ publicKey: Buffer.from(keys.publicKey).toString("hex"), taxpayerId: TAXPAYER, deviceSerial: DEVICE });
      const bodies: string[] = [];
      for (let b = 0; b < BATCHES; b++) {
        const invoices = [];
        for (let i = 0; i < BATCH; i++) {
          const number = b * BATCH + i + 1;
          const amountFen = 10_000 + number;
          const invoice: Invoice = {
            kind: 0, mode: 0, typeCode: "02601", invoiceCode: CODE, invoiceNumber: number, issuedAt: Math.floor(clock.now() / 1000) + number,
            taxpayerId: TAXPAYER, loginAccount: "acct01", machineNumber: "000000000001", sellerName: "济南测试商贸有限公司", buyerName: "Buyer",
            buyerTaxId: "", originalCode: "", originalNumber: 0,
            lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: amountFen, amountFen, taxRatePermille: 130, taxFen: 1300 }],
            totalAmountFen: amountFen, totalTaxFen: 1300, remark: "",
          };
          const { data, signature } = signInvoiceAsDevice(invoice, taxControlKey, keys);
          invoices.push({ data: Buffer.from(data).toString("base64"), signature: Buffer.from(signature).toString("base64") });
        }
        bodies.push(JSON.stringify({ taxpayerId: TAXPAYER, deviceSerial: DEVICE, certificates: chain, invoices }));
      }
      await post(agent, bureau.url, bureau.caCertPem, "{}"); // warm the TLS session and the code paths
      const start = performance.now();
      for (const body of bodies) {
        const reply = await post(agent, bureau.url, bureau.caCertPem, body);
        if (reply.status !== 200) throw new Error(`upload failed: ${reply.status} ${reply.text.slice(0, 200)}`);
      }
      const seconds = (performance.now() - start) / 1000;
      const stored = bureau.store.invoiceCount();
      if (stored !== BATCH * BATCHES) throw new Error(`stored ${stored} invoices, expected ${BATCH * BATCHES}`);
      return {
        "bureau.upload_per_s": {
          value: Math.round(stored / seconds), unit: "invoice/s", goal: ">= 500",
          note: `${BATCHES} batches x ${BATCH} over HTTPS loopback, SQLite file WAL+FULL`,
        },
      };
    } finally {
      agent.destroy();
      await bureau.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default bench;
