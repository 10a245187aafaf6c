/**
 * The demonstration (`npm start` / `ukeysim demo`): the paper's offline invoicing flow and the
 * article's faults, end to end, on embedded defaults with no set-up.
 *
 *  1. the bureau issues a Ukey (file image) and starts its HTTPS receiver on loopback;
 *  2. the host logs in with two passwords and syncs stock and limits while online;
 *  3. the network goes down; invoices are issued offline up to the offline count limit,
 *     and the next one is refused by the Ukey;
 *  4. power is cut in the middle of an issue; the Ukey and the host recover;
 *  5. one invoice is voided and one credited (red-letter);
 *  6. the network returns; the offline data is uploaded, receipts confirmed, rollover allowed;
 *     online issuing resumes only now;
 *  7. the connection checks run, healthy and then against a TLS-intercepting middlebox;
 *  8. a report (HTML, JUnit, JSON with the flash wear map), the trace and the printable
 *     invoices are written to the output folder.
 *
 * Every step is judged; the demo's result says whether each behaved as the paper requires.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileTrace, Rng, type Clock } from "../src/sim/index.ts";
import { parseProfile, TYUKEY_BASE } from "../src/tax/index.ts";
import { startBureau, issueUkey, type Bureau } from "../src/bureau/index.ts";
import {
  BureauHttp, HostDb, OfflineIssuer, UkeyClient, runDiagnosis, setPassword, isUkeyError, type InvoiceInput, type InvoiceRow, type Diagnosis,
} from "../src/host/index.ts";
import { openTarget, RunTrace, type Target } from "./target.ts";
import { writeReports, type CaseResult, type ReportFiles, type RunReport } from "./report.ts";

export const DEMO_TOOL = "demo";
export const DEFAULT_DEMO_INVOICES = 5;
/** More offline invoices than this make the demo a load test; the limit keeps it quick. */
export const MAX_DEMO_INVOICES = 200;
const PROFILE_URL = new URL("../fixtures/profile-default.json", import.meta.url);
const HOST_PASSWORD = "demo-host-password";
const HOUR_MS = 3_600_000;
/** The mutating flash operation of the cut issue at which power fails (0 = its first write). */
const CUT_AT_MUTATING_OP = 1;
/** Offset of TYUKEY codes the demo expects, named for reading. */
const OFFLINE_COUNT_ERROR = TYUKEY_BASE + 23;

export interface DemoOptions {
  seed: number;
  invoices: number;
  outDir: string;
  /** Wall clock for the bureau's TLS certificates (clients check them against real time). */
  wallClock: Clock;
  log: (line: string) => void;
}

export interface DemoResult {
  ok: boolean;
  steps: CaseResult[];
  files: ReportFiles & { trace: string; image: string; invoicesDir: string; bureauDb: string; hostDb: string };
  replay: string;
}

interface DemoWorld {
  target: Target;
  bureau: Bureau;
  issuer: OfflineIssuer;
  client: UkeyClient;
  db: HostDb;
  pin: string;
  clock: { now(): number; advance(ms: number): void };
  printedFiles: string[];
}

function checkInvoices(count: number): void {
  if (!Number.isInteger(count) || count < 2 || count > MAX_DEMO_INVOICES) {
    throw new RangeError(`--invoices must be an integer from 2 to ${MAX_DEMO_INVOICES} (the offline count limit of the demo), got ${count}`);
  }
}

function invoiceInput(index: number): InvoiceInput {
  const amountFen = 10_000 + index * 1_250;
  const taxFen = Math.floor((amountFen * 130 + 500) / 1000);
  return {
    typeCode: "02601", buyerName: `示例客户 ${index + 1}`, buyerTaxId: "", remark: "demo",
    lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: amountFen, amountFen, taxRatePermille: 130, taxFen }],
  };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs one judged step; a thrown error is the step's failure, and the demo goes on. */
async function step(steps: CaseResult[], log: (line: string) => void, name: string, body: () => Promise<string>): Promise<boolean> {
  const started = performance.now();
  log(`\n== ${name}`);
  try {
    const message = await body();
    steps.push({ suite: DEMO_TOOL, name, status: "pass", durationMs: performance.now() - started, message });
    log(`   ok: ${message}`);
    return true;
  } catch (error) {
    steps.push({ suite: DEMO_TOOL, name, status: "fail", durationMs: performance.now() - started, message: describeError(error) });
    log(`   FAILED: ${describeError(error)}`);
    return false;
  }
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

function formatDiagnosis(d: Diagnosis, log: (line: string) => void): void {
  for (const c of d.checks) log(`   ${c.status.padEnd(4)} ${c.title}${c.status === "PASS" ? "" : ` - ${c.cause}${c.fix ? ` (fix: ${c.fix})` : ""}`}`);
}

async function setUp(o: DemoOptions, trace: RunTrace, files: DemoResult["files"]): Promise<DemoWorld> {
  const profile = parseProfile(readFileSync(PROFILE_URL, "utf8"));
  const rng = new Rng(o.seed);
  const target = await openTarget(`sim:${files.image}`, { seed: o.seed, trace });
  const sim = target.sim;
  if (!sim) throw new Error("the demo needs a simulated target");
  const device = sim.device;
  const clock = { now: () => device.clock.now(), advance: (ms: number) => sim.advanceClock(ms) };
  const bureau = await startBureau({ clock, tlsClock: o.wallClock, rng: rng.fork("bureau"), dbPath: files.bureauDb, masterKey: profile.bureauMasterKey });
  bureau.service.registerTaxpayer({
    taxpayerId: profile.taxpayer.taxpayerId, name: profile.taxpayer.taxpayerName,
    limits: { offlineHours: 72, maxInvoiceFen: 10_000_000, maxOfflineTotalFen: 100_000_000, maxOfflineCount: o.invoices },
    stock: profile.purchases.filter((p) => p.count > 0).map((p) => ({ typeCode: p.typeCode, invoiceCode: p.invoiceCode, startNumber: p.startNumber, count: p.count })),
  });
  bureau.service.registerDevice({ deviceSerial: device.serial, taxpayerId: profile.taxpayer.taxpayerId, taxControlKey: Buffer.from(profile.taxKey).toString("hex") });
  const client = new UkeyClient(target.channel);
  await target.channel.powerOn();
  await issueUkey(client.send, { profile, serial: device.serial, pki: bureau.service.pki, rng: rng.fork("issuance"), nowMs: clock.now() });
  await client.disconnect();
  const db = new HostDb(files.hostDb);
  setPassword(db, rng.fork("host-password"), HOST_PASSWORD);
  const printedFiles: string[] = [];
  const issuer = new OfflineIssuer({
    client, db, clock, rng: rng.fork("host"),
    bureau: new BureauHttp({ serverUrl: bureau.url, caPem: bureau.caCertPem, timeoutMs: 2_000 }),
    sleep: async () => {},
    retry: { attempts: 2 },
    printer: (html: string, row: InvoiceRow) => {
      const file = join(files.invoicesDir, `${row.invoiceCode}-${String(row.invoiceNumber).padStart(8, "0")}.html`);
      writeFileSync(file, html);
      printedFiles.push(file);
    },
  });
  return { target, bureau, issuer, client, db, pin: profile.userPin, clock, printedFiles };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  checkInvoices(o.invoices);
  mkdirSync(o.outDir, { recursive: true });
  const files = {
    image: join(o.outDir, "ukey.img"), trace: join(o.outDir, "trace.jsonl"), invoicesDir: join(o.outDir, "invoices"),
    bureauDb: join(o.outDir, "bureau.sqlite"), hostDb: join(o.outDir, "host.sqlite"),
    json: "", junit: "", html: "",
  };
  mkdirSync(files.invoicesDir, { recursive: true });
  // A fresh run every time: the Ukey image and both databases start empty.
  for (const stale of [files.image, files.bureauDb, files.hostDb]) rmSync(stale, { force: true });
  const replay = `ukeysim demo --seed ${o.seed} --invoices ${o.invoices} --out ${o.outDir}`;
  const trace = new RunTrace(new FileTrace(files.trace));
  trace.emit({ kind: "run", seed: o.seed, tool: DEMO_TOOL, params: { invoices: o.invoices } });
  const steps: CaseResult[] = [];
  const log = o.log;
  log(`ukeysim demo: seed ${o.seed}, ${o.invoices} offline invoices allowed; output in ${o.outDir}`);

  let world: DemoWorld | undefined;
  await step(steps, log, "issue a Ukey and start the bureau", async () => {
    world = await setUp(o, trace, files);
    return `Ukey ${world.target.sim?.device.serial} personalized with an SM2 device certificate; bureau at ${world.bureau.url}`;
  });
  if (!world) return finish(o, steps, files, replay, trace, undefined);
  const w = world;

  await step(steps, log, "log in with two passwords and sync online", async () => {
    await w.issuer.login({ password: HOST_PASSWORD, pin: w.pin });
    const sync = await w.issuer.sync();
    return `host password and Ukey PIN accepted; synced ${sync.stockRanges} stock range(s), ${sync.messagesApplied} bureau message(s) applied to the Ukey`;
  });

  await step(steps, log, "lose the network", async () => {
    await w.bureau.setFaults({ refuseConnections: true });
    try {
      await w.issuer.sync();
    } catch (error) {
      return `the bureau is unreachable (${describeError(error)}); issuing goes offline`;
    }
    throw new Error("sync still reached the bureau with connections refused");
  });

  await step(steps, log, "issue offline, with a power cut in the middle of one issue", async () => {
    const power = w.target.power;
    expect(power !== undefined, "the simulated target has no power control");
    const first = await w.issuer.issue(invoiceInput(0));
    expect(first.mode === "offline", "the first invoice was not issued offline");
    w.clock.advance(HOUR_MS);
    power!.armCut(CUT_AT_MUTATING_OP);
    let cutError = "";
    try {
      await w.issuer.issue(invoiceInput(1), { requestId: "demo-cut" });
    } catch (error) {
      cutError = describeError(error);
    }
    expect(power!.cutHappened(), "the armed power cut did not happen during the issue");
    await power!.restore();
    const report = await w.issuer.login({ password: HOST_PASSWORD, pin: w.pin });
    const rows = w.issuer.list();
    const afterCut = rows.length;
    expect(afterCut === 1 || afterCut === 2, `after the cut the host lists ${afterCut} invoices; expected the old (1) or new (2) state`);
    const numbers = rows.map((r) => r.invoiceNumber);
    expect(new Set(numbers).size === numbers.length, "an invoice number was used twice");
    return `cut at flash op ${CUT_AT_MUTATING_OP} of the issue (${cutError || "no error seen"}); after re-power the Ukey holds ` +
      `${afterCut === 2 ? "the new invoice (committed before the cut)" : "the old state (the torn issue was dropped)"}; ` +
      `reconciliation: ${JSON.stringify(report)}`;
  });

  await step(steps, log, `issue up to the offline count limit (${o.invoices}) and see the refusal`, async () => {
    let index = 2;
    while (w.issuer.list().length < o.invoices) {
      w.clock.advance(HOUR_MS);
      await w.issuer.issue(invoiceInput(index++));
    }
    try {
      await w.issuer.issue(invoiceInput(index));
    } catch (error) {
      expect(isUkeyError(error, OFFLINE_COUNT_ERROR), `expected TYUKEY_BASE+23 (offline count), got: ${describeError(error)}`);
      return `${w.issuer.list().length} invoices issued offline; invoice ${o.invoices + 1} refused by the Ukey: ${describeError(error)}`;
    }
    throw new Error("the Ukey issued past its offline count limit");
  });

  await step(steps, log, "void one invoice and credit another (red-letter)", async () => {
    const rows = w.issuer.list().filter((r) => r.kind === "normal");
    const toVoid = rows[0];
    const toCredit = rows[1];
    expect(toVoid !== undefined && toCredit !== undefined, "need two issued invoices");
    const voided = await w.issuer.voidInvoice(toVoid!.invoiceCode, toVoid!.invoiceNumber);
    expect(voided.voidedAt !== null, "the void was not recorded");
    // The red-letter invoice needs a free offline slot: it is refused while at the count limit.
    let red: InvoiceRow | undefined;
    let redRefusal = "";
    try {
      red = await w.issuer.red(toCredit!.invoiceCode, toCredit!.invoiceNumber);
    } catch (error) {
      redRefusal = describeError(error);
    }
    return `voided ${toVoid!.invoiceCode}/${toVoid!.invoiceNumber} with a signed void receipt; ` +
      (red ? `credited ${toCredit!.invoiceCode}/${toCredit!.invoiceNumber} by red invoice ${red.invoiceNumber}` : `red-letter refused offline at the limit (${redRefusal}); it is issued after upload`);
  });

  await step(steps, log, "restore the network, upload, confirm receipts and allow rollover", async () => {
    await w.bureau.setFaults({ refuseConnections: false });
    const before = w.target.sim?.device.mount().stats();
    const upload = await w.issuer.upload();
    expect(upload.stopped === undefined, `upload stopped: ${JSON.stringify(upload.stopped)}`);
    const status = await w.issuer.status();
    expect(status.pendingOnUkey === 0, `${status.pendingOnUkey} events still pending on the Ukey`);
    const after = w.target.sim?.device.mount().stats();
    return `uploaded ${upload.uploaded} event(s) in ${upload.batches} batch(es); ${upload.receipts.length} signed receipt(s) verified and confirmed; ` +
      `reclaimable records on the Ukey: ${before?.reclaimableRecords ?? "?"} -> ${after?.reclaimableRecords ?? "?"}`;
  });

  await step(steps, log, "issue online again (allowed only after the upload), and the red-letter invoice", async () => {
    const online = await w.issuer.issue(invoiceInput(99), { online: true });
    const normal = w.issuer.list().filter((r) => r.kind === "normal" && r.voidedAt === null && r.invoiceNumber !== online.invoiceNumber);
    const original = normal[0];
    expect(original !== undefined, "no invoice left to credit");
    const red = await w.issuer.red(original!.invoiceCode, original!.invoiceNumber);
    const upload = await w.issuer.upload();
    expect(upload.stopped === undefined, `upload stopped: ${JSON.stringify(upload.stopped)}`);
    return `online invoice ${online.invoiceCode}/${online.invoiceNumber}; red invoice ${red.invoiceNumber} credits ${original!.invoiceNumber}; ` +
      `both uploaded (${upload.uploaded} event(s))`;
  });

  await step(steps, log, "run the connection checks (healthy, then behind SSL deep inspection)", async () => {
    const healthy = await runDiagnosis({ channel: w.target.channel, serverUrl: w.bureau.url, caPem: w.bureau.caCertPem, clock: w.clock, pin: w.pin, db: w.db });
    formatDiagnosis(healthy, log);
    const notPassing = healthy.checks.filter((c) => c.status !== "PASS").map((c) => c.id);
    expect(healthy.ok && notPassing.length === 0, `a healthy set-up did not pass: ${notPassing.join(", ")}`);
    await w.bureau.setFaults({ interception: true });
    const intercepted = await runDiagnosis({ channel: w.target.channel, serverUrl: w.bureau.url, caPem: w.bureau.caCertPem, clock: w.clock, pin: w.pin, db: w.db });
    await w.bureau.setFaults({ interception: false });
    log("   with a TLS-intercepting middlebox:");
    formatDiagnosis(intercepted, log);
    const failed = intercepted.checks.filter((c) => c.status === "FAIL").map((c) => c.id);
    expect(!intercepted.ok && failed.length > 0, "the interception went unnoticed");
    return `healthy: all ${healthy.checks.length} checks pass; with interception: ${failed.join(", ")} fail`;
  });

  return finish(o, steps, files, replay, trace, w);
}

async function finish(o: DemoOptions, steps: CaseResult[], files: DemoResult["files"], replay: string, trace: RunTrace, w?: DemoWorld): Promise<DemoResult> {
  const ok = steps.every((s) => s.status === "pass");
  const report: RunReport = {
    tool: DEMO_TOOL, target: `sim:${files.image}`, seed: o.seed, params: { invoices: o.invoices }, results: steps, replay, traceFile: files.trace,
    ...(w?.target.sim ? { wearMap: w.target.sim.wearMap() } : {}),
  };
  const written = writeReports(report, o.outDir);
  const imageDigest = w?.target.sim?.imageDigest();
  if (w) {
    w.db.close();
    await w.bureau.stop();
    await w.target.close();
  }
  trace.emit({ kind: "end", ok, ...(imageDigest ? { imageDigest } : {}) });
  return { ok, steps, files: { ...files, ...written }, replay };
}
