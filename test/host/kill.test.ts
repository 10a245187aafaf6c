/**
 * The host process SIGKILLed at random points of issuing (ten times) and of uploading (three): a child process
 * runs the issuer on a file-backed Ukey image and a SQLite file; each restart logs in
 * (reconciles) and re-runs the same requests. At the end the Ukey, the local DB and the
 * bureau agree: every request issued exactly once, nothing lost, nothing printed that the
 * Ukey did not commit.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openUkeyImage } from "../../src/cos/index.ts";
import { Rng } from "../../src/sim/index.ts";
import { startBureau, type Bureau } from "../../src/bureau/index.ts";
import { InProcessChannel } from "../../src/transport/index.ts";
import { UkeyClient, HostDb, setPassword } from "../../src/host/index.ts";
import { decodeInvoice, formatInvoiceNumber } from "../../src/tax/index.ts";
import { PASSWORD, PROFILE, SERIAL, WALL, personalizeWithCert, taxpayerRegistration } from "./support/rig.ts";

const REQUESTS = 40;
const KILLS = 10;
const UPLOAD_KILLS = 3;
const CHILD = new URL("./support/kill-child.ts", import.meta.url).pathname;
const GEOMETRY = { pageBytes: 2048, spareBytes: 64, pagesPerBlock: 64, blocks: 64 };

/** tsx's loader by absolute URL: the child runs in a directory without node_modules. */
const TSX = pathToFileURL(new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).pathname).href;
let dir: string;
let bureau: Bureau;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ukeysim-host-kill-"));
  bureau = await startBureau({ clock: WALL, rng: new Rng(7), masterKey: PROFILE.bureauMasterKey });
  bureau.service.registerTaxpayer(taxpayerRegistration());
  bureau.service.registerDevice({ deviceSerial: SERIAL, taxpayerId: PROFILE.taxpayer.taxpayerId, taxControlKey: Buffer.from(PROFILE.taxKey).toString("hex") });
  const ukey = openUkeyImage({ path: join(dir, "key.img"), create: true, geometry: GEOMETRY, clock: WALL, rng: new Rng(11), serial: SERIAL });
  try {
    await personalizeWithCert(new UkeyClient(new InProcessChannel(ukey.card)), bureau, WALL as never);
  } finally {
    ukey.chip.close();
  }
  const db = new HostDb(join(dir, "host.db"));
  setPassword(db, new Rng(1), PASSWORD);
  db.close();
  writeFileSync(join(dir, "ca.pem"), bureau.caCertPem);
});
afterAll(async () => {
  await bureau?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
}

function runChild(args: string[], killAfterMs?: number, crash?: string): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, UKEYSIM_CRASH: crash ?? "" };
    const child = spawn(process.execPath, ["--import", TSX, CHILD, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
    const lines: string[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      for (const l of d.toString().split("\n")) if (l) lines.push(l);
      if (killAfterMs !== undefined && lines.some((l) => l.startsWith("ready"))) {
        const t = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        killAfterMs = undefined;
        child.on("exit", () => clearTimeout(t));
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code, signal) => {
      if (code !== 0 && signal !== "SIGKILL") lines.push(`stderr: ${err}`);
      resolve({ lines, code, signal });
    });
  });
}

it(`survives ${KILLS} SIGKILLs while issuing and ${UPLOAD_KILLS} while uploading: Ukey, local DB and bureau agree`, async () => {
  const rng = new Rng(2026);
  const image = join(dir, "key.img");
  const dbPath = join(dir, "host.db");
  const printLog = join(dir, "printed.log");
  let killed = 0;
  const reconciled: string[] = [];
  // two crashes at the narrow points (card committed / DB committed, not yet printed), then random ones
  const crashes = ["card:3", "print:2"];
  for (let k = 0; k < KILLS; k++) {
    const crash = crashes[k];
    const run = await runChild([image, dbPath, printLog, "0", String(REQUESTS)], crash ? undefined : rng.range(5, 60), crash);
    const ready = run.lines.find((l) => l.startsWith("ready"));
    expect(ready, run.lines.join("\n")).toBeDefined();
    reconciled.push(ready as string);
    if (run.signal === "SIGKILL") killed++;
    else expect(run.code, run.lines.join("\n")).toBe(0);
  }
  if (process.env.KILL_DEBUG) console.log(reconciled.join("\n"), killed);
  expect(killed).toBeGreaterThanOrEqual(KILLS / 2);
  // the run after the card-commit crash found the committed invoice through its intent
  expect(JSON.parse((reconciled[1] as string).slice("ready ".length)).committed).toBe(1);
  // then SIGKILLs during the upload (after the bureau stored a batch, before the Ukey confirmed it, ...)
  const uploadArgs = [image, dbPath, printLog, "0", String(REQUESTS), "upload", bureau.url, join(dir, "ca.pem")];
  for (let k = 0; k < UPLOAD_KILLS; k++) {
    const run = await runChild(uploadArgs, rng.range(20, 400));
    expect(run.lines.some((l) => l.startsWith("ready")), run.lines.join("\n")).toBe(true);
  }
  expect(bureau.store.invoiceCount()).toBeLessThanOrEqual(REQUESTS);
  const last = await runChild(uploadArgs);
  expect(last.code, last.lines.join("\n")).toBe(0);
  expect(last.lines.at(-1)).toBe("exit");

  // the Ukey
  const ukey = openUkeyImage({ path: image, clock: WALL, rng: new Rng(3) });
  const client = new UkeyClient(new InProcessChannel(ukey.card));
  const onCard = new Map<number, string>();
  try {
    await client.connect();
    await client.verifyPin(PROFILE.userPin);
    const { status } = await client.getLimits();
    expect(status.pendingCount).toBe(0);
    expect(status.issuedTotal).toBe(REQUESTS);
    for (let n = 1001; n < 1001 + REQUESTS + 1; n++) {
      try {
        const s = await client.readInvoice("137001900111", n);
        onCard.set(n, decodeInvoice(s.issued.invoice).lines[0]!.unitPriceFen.toString());
      } catch {
        // beyond the last number
      }
    }
  } finally {
    ukey.chip.close();
  }
  expect(onCard.size).toBe(REQUESTS);
  // every request exactly once on the card: unit prices 1000..1000+REQUESTS-1, no repeats
  expect([...onCard.values()].sort()).toEqual(Array.from({ length: REQUESTS }, (_, i) => String(1000 + i)).sort());

  // the local DB
  const db = new HostDb(dbPath);
  try {
    const rows = db.invoices();
    expect(rows.map((r) => r.invoiceNumber)).toEqual([...onCard.keys()].sort((a, b) => a - b));
    expect(new Set(rows.map((r) => r.requestId)).size).toBe(REQUESTS);
    expect(rows.every((r) => r.uploaded)).toBe(true);
    expect(db.openIntents()).toEqual([]);
  } finally {
    db.close();
  }

  // the bureau: each exactly once
  expect(bureau.store.invoiceCount()).toBe(REQUESTS);
  for (const n of onCard.keys()) expect(bureau.store.invoice("137001900111", formatInvoiceNumber(n))).toBeDefined();

  // printing: only what the Ukey committed
  const printed = existsSync(printLog) ? readFileSync(printLog, "utf8").trim().split("\n") : [];
  for (const p of printed) expect(onCard.has(Number(p.split("/")[1]))).toBe(true);
}, 120_000);
