/** Test support for the bureau: an HTTPS client, a booted bureau, a registered taxpayer with a device. */
import { request as httpsRequest } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import { startBureau, signInvoiceAsDevice, type Bureau, type BureauFaults } from "../../src/bureau/index.ts";
import { sm2GenerateKeyPair, type Sm2KeyPair } from "../../src/crypto/index.ts";
import type { Invoice } from "../../src/tax/index.ts";
import { Rng, VirtualClock, type Clock } from "../../src/sim/index.ts";

export const START = Date.UTC(2026, 0, 1, 8);
/** TLS certificates are checked by OpenSSL against real time, so the TLS clock is the wall clock. */
export const WALL: Clock = { now: () => Date.now() };

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  body: Buffer;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface CallOptions {
  method?: string;
  json?: unknown;
  raw?: string | Buffer;
  contentType?: string;
  ca?: string | string[];
  timeoutMs?: number;
}

/** One HTTPS request with a fresh connection; rejects with the socket/TLS error (error.code). */
export function call(bureau: Pick<Bureau, "url" | "caCertPem">, path: string, options: CallOptions = {}): Promise<Reply> {
  const url = new URL(path, bureau.url);
  const payload = options.raw ?? (options.json !== undefined ? JSON.stringify(options.json) : undefined);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: options.method ?? (payload !== undefined ? "POST" : "GET"),
      ca: options.ca ?? bureau.caCertPem,
      agent: false,
      timeout: options.timeoutMs ?? 20_000,
      headers: payload !== undefined ? { "content-type": options.contentType ?? "application/json", "content-length": Buffer.byteLength(payload) } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        const text = body.toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body, json });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export async function boot(faults: Partial<BureauFaults> = {}, seed = 1): Promise<{ bureau: Bureau; clock: VirtualClock }> {
  const clock = new VirtualClock(START);
  const bureau = await startBureau({ clock, tlsClock: WALL, rng: new Rng(seed), faults, onError: (error) => console.error("bureau internal error:", error) });
  return { bureau, clock };
}

export const TAXPAYER = "91370100MA3C0000X1";
export const DEVICE = "UK0001";
export const INVOICE_CODE = "037001900111";

export interface Device {
  taxpayerId: string;
  deviceSerial: string;
  keyPair: Sm2KeyPair;
  taxControlKey: Uint8Array;
  /** Base64 DER: device certificate, then the intermediate. */
  chain: string[];
  invoice(number: number, overrides?: Partial<Invoice>): { data: string; signature: string };
  batch(numbers: number[], extra?: Record<string, unknown>): Record<string, unknown>;
}

export function registerDevice(bureau: Bureau, clock: Clock, rng: Rng, taxpayerId = TAXPAYER, deviceSerial = DEVICE, stockStart = 1): Device {
  bureau.service.registerTaxpayer({
    taxpayerId, name: "济南测试商贸有限公司",
    limits: { offlineHours: 72, maxInvoiceFen: 10_000_000, maxOfflineTotalFen: 100_000_000, maxOfflineCount: 1000 },
    stock: [{ invoiceCode: INVOICE_CODE, startNumber: stockStart, count: 100_000 }],
  });
  const taxControlKey = rng.bytes(16);
  bureau.service.registerDevice({ deviceSerial, taxpayerId, taxControlKey: Buffer.from(taxControlKey).toString("hex") });
  const keyPair = sm2GenerateKeyPair(rng);
  const issued = bureau.service.issueDeviceCertificate({ publicKey: Buffer.from(keyPair.publicKey).toString("hex"), taxpayerId, deviceSerial });
  const device: Device = {
    taxpayerId, deviceSerial, keyPair, taxControlKey, chain: issued.chain,
    invoice(number, overrides = {}) {
      const { data, signature } = signInvoiceAsDevice(makeInvoice(taxpayerId, number, clock.now(), overrides), taxControlKey, keyPair);
      return { data: Buffer.from(data).toString("base64"), signature: Buffer.from(signature).toString("base64") };
    },
    batch(numbers, extra = {}) {
      return { taxpayerId, deviceSerial, certificates: device.chain, invoices: numbers.map((n) => device.invoice(n)), ...extra };
    },
  };
  return device;
}

/** A one-line 13 % invoice: amount 10000 + 100 n fen, tax 1300 + 13 n; grand total 11300 + 113 n. */
export function makeInvoice(taxpayerId: string, number: number, nowMs: number, overrides: Partial<Invoice> = {}): Invoice {
  const amountFen = 10_000 + 100 * number;
  const taxFen = 1_300 + 13 * number;
  return {
    kind: 0, mode: 0, typeCode: "02601", invoiceCode: INVOICE_CODE, invoiceNumber: number, issuedAt: Math.floor(nowMs / 1000),
    taxpayerId, loginAccount: "acct01", machineNumber: "000000000001", sellerName: "济南测试商贸有限公司", buyerName: "Buyer A",
    buyerTaxId: "", originalCode: "", originalNumber: 0,
    lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: amountFen, amountFen, taxRatePermille: 130, taxFen }],
    totalAmountFen: amountFen, totalTaxFen: taxFen, remark: "", ...overrides,
  };
}
