/**
 * COS benchmarks: an in-process APDU round trip, the issue rate through the full COS path
 * on the real FlashStore, and that rate against OpenSSL's SM2 signing speed measured in
 * the same run (the issue path signs once per invoice, so signing bounds it).
 */
import { spawnSync } from "node:child_process";
import type { BenchModule, Metric } from "./harness.ts";
import { median } from "./harness.ts";
import { createUkeyOnFlash } from "../src/cos/index.ts";
import { NandChip, DEFAULT_GEOMETRY } from "../src/flash-store/index.ts";
import { Rng, VirtualClock } from "../src/sim/index.ts";
import {
  CLA_PROPRIETARY, INS, encodeCommand, encodeInvoice, parseProfile, personalizeCard, FACTORY_ISSUER_KEY, deriveCardKey, verifyPin, call,
  bureauAuthenticate, issuer, splitResponse, type Invoice, type Send,
} from "../src/tax/index.ts";
import { readFileSync } from "node:fs";

const ISSUE_SAMPLE_MS = 3000;
const RTT_SAMPLES = 5;
const RTT_CALLS = 2000;
const OPENSSL_SECONDS = 3;
const START_SECONDS = 1_767_225_600;

async function readyCard() {
  const profile = parseProfile(readFileSync(new URL("../fixtures/profile-default.json", import.meta.url), "utf8"));
  const clock = new VirtualClock(START_SECONDS * 1000);
  const { card } = createUkeyOnFlash({ chip: NandChip.memory({ geometry: DEFAULT_GEOMETRY }), clock, rng: new Rng(1), serial: "UKBENCH000000001" });
  card.powerOn();
  const send: Send = async (apdu) => card.process(apdu);
  const cardKey = deriveCardKey(profile.bureauMasterKey, "UKBENCH000000001");
  await personalizeCard(send, {
    issuerKey: FACTORY_ISSUER_KEY, cardKey, userPin: profile.userPin, soPin: profile.soPin, clockSeconds: START_SECONDS, taxKey: profile.taxKey,
    taxCodeAlgorithm: profile.taxCodeAlgorithm, taxpayer: profile.taxpayer, invoiceTypes: profile.invoiceTypes,
    purchases: [{ ...profile.purchases[0]!, count: 9_000_000 }],
    limits: { ...profile.limits, maxOfflineCount: 1e9, maxOfflineAmountFen: 1e15 },
  });
  await verifyPin(send, profile.userPin);
  await call(send, encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GENERATE_KEY_PAIR, le: 256 }));
  await issuer.writeCert(send, await bureauAuthenticate(send, cardKey), 0, Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01));
  const t = profile.taxpayer;
  const draft: Invoice = {
    kind: 0, mode: 0, typeCode: "02601", invoiceCode: "", invoiceNumber: 0, issuedAt: 0, taxpayerId: t.taxpayerId, loginAccount: t.loginAccount,
    machineNumber: t.machineNumber, sellerName: t.taxpayerName, buyerName: "张三", buyerTaxId: "", originalCode: "", originalNumber: 0,
    lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: 10_000, amountFen: 10_000, taxRatePermille: 130, taxFen: 1300 }],
    totalAmountFen: 10_000, totalTaxFen: 1300, remark: "",
  };
  return { card, clock, draft };
}

function opensslSignPerSecond(): { value: number; note: string } | undefined {
  const r = spawnSync("openssl", ["speed", "-seconds", String(OPENSSL_SECONDS), "sm2"], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) return undefined;
  const m = /SM2 \(CurveSM2\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)/.exec(r.stdout);
  if (!m) return undefined;
  return { value: Number(m[1]), note: (r.stdout.split("\n")[0] ?? "openssl").trim() };
}

const bench: BenchModule = {
  ids: ["cos.apdu_rtt_us.inproc", "cos.issue_per_s", "cos.openssl_sm2_sign_per_s", "cos.issue_over_openssl_sign"],
  async run() {
    const { card, clock, draft } = await readyCard();
    const out: Record<string, Metric> = {};
    const time = encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.GET_SECURE_TIME, le: 256 });
    const samples: number[] = [];
    for (let s = 0; s < RTT_SAMPLES; s++) {
      const t0 = performance.now();
      for (let i = 0; i < RTT_CALLS; i++) card.process(time);
      samples.push(((performance.now() - t0) * 1000) / RTT_CALLS);
    }
    out["cos.apdu_rtt_us.inproc"] = { value: Number(median(samples).toFixed(2)), unit: "us", goal: "<= 50", note: "GET SECURE TIME, SimCard.process in process" };
    const issue = encodeCommand({ cla: CLA_PROPRIETARY, ins: INS.ISSUE, data: encodeInvoice(draft), le: 65536 });
    let n = 0;
    const t0 = performance.now();
    let elapsed = 0;
    do {
      clock.advance(1000);
      const { sw } = splitResponse(card.process(issue));
      if (sw !== 0x9000) throw new Error(`issue failed with ${sw.toString(16)}`);
      n++;
      elapsed = performance.now() - t0;
    } while (elapsed < ISSUE_SAMPLE_MS);
    const issueRate = (n * 1000) / elapsed;
    out["cos.issue_per_s"] = { value: Math.round(issueRate), unit: "invoice/s", note: `${n} issues: checks, tax code, SM2 sign, one FlashStore transaction each (128 MiB chip in memory)` };
    const ossl = opensslSignPerSecond();
    if (ossl) {
      out["cos.openssl_sm2_sign_per_s"] = { value: Math.round(ossl.value), unit: "sign/s", note: `openssl speed -seconds ${OPENSSL_SECONDS} sm2 (${ossl.note})` };
      out["cos.issue_over_openssl_sign"] = { value: Number((issueRate / ossl.value).toFixed(3)), unit: "ratio", goal: ">= 0.8", note: "issue/s over OpenSSL SM2 sign/s, same run" };
    }
    return out;
  },
};
export default bench;
