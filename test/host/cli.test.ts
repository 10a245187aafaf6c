/**
 * The CLI end to end: ukeysim personalize -> issuer enroll/login/sync/issue/void/upload/list/print
 * and diagnose, against a bureau over HTTPS; bad input gets a clear error and exit 1.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { Command } from "commander";
import { registerCommands } from "../../src/cli/commands.ts";
import { Rng } from "../../src/sim/index.ts";
import { startBureau, type Bureau } from "../../src/bureau/index.ts";
import { PROFILE, WALL } from "./support/rig.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const PROFILE_FILE = new URL("../../fixtures/profile-default.json", import.meta.url).pathname;
/** tsx's loader by absolute URL: the child runs in a directory without node_modules. */
const TSX = pathToFileURL(new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).pathname).href;
let dir: string;
let bureau: Bureau;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ukeysim-host-cli-"));
  bureau = await startBureau({ clock: WALL, rng: new Rng(8) });
  writeFileSync(join(dir, "ca.pem"), bureau.caCertPem);
  writeFileSync(join(dir, "bad.json"), JSON.stringify({ typeCode: "02601", buyerName: "x", lines: [{ name: "a", quantityMilli: 1000, unitPriceFen: 9.99, taxRatePermille: 130 }] }));
  writeFileSync(join(dir, "inv.json"), JSON.stringify({ typeCode: "02601", buyerName: "李四商店", lines: [{ name: "打印纸", unit: "包", quantityMilli: 2000, unitPriceFen: 2500, taxRatePermille: 130 }] }));
});
afterAll(async () => {
  await bureau?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** One spawned run: the real binary and its exit code. */
function spawnCli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", TSX, MAIN, ...args], {
      cwd: dir, env: { ...process.env, UKEYSIM_PIN: PROFILE.userPin, UKEYSIM_PASSWORD: "host-pass-1" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

/** The same commands in this process (a new program each time), capturing output and the exit code. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const program = new Command().name("ukeysim").exitOverride();
  registerCommands(program);
  let out = "";
  let err = "";
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void (out += a.join(" ") + "\n"));
  const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void (err += a.join(" ") + "\n"));
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const cwd = process.cwd();
  process.env.UKEYSIM_PIN = PROFILE.userPin;
  process.env.UKEYSIM_PASSWORD = "host-pass-1";
  process.exitCode = 0;
  try {
    process.chdir(dir);
    await program.parseAsync(["node", "ukeysim", ...args]);
  } finally {
    process.chdir(cwd);
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, out, err };
}

it("personalize, enroll, login, sync, issue, void, upload, list, print and diagnose from the command line", async () => {
  const common = ["--target", "sim:key.img", "--server", bureau.url, "--ca", "ca.pem", "--json"];
  expect((await cli("personalize", "--image", "key.img", "--seed", "4")).code).toBe(0);
  const enroll = await cli("issuer", "enroll", ...common, "--profile", PROFILE_FILE);
  expect(enroll.code, enroll.out + enroll.err).toBe(1); // no host password yet
  expect(JSON.parse(enroll.out)).toMatchObject({ ok: false, code: "NO_PASSWORD" });
  expect((await cli("issuer", "login", ...common, "--new-password", "host-pass-1")).code).toBe(0);
  const r = await cli("issuer", "enroll", ...common, "--profile", PROFILE_FILE);
  expect(r.code, r.out + r.err).toBe(0);
  const sync = await cli("issuer", "sync", ...common);
  expect(JSON.parse(sync.out)).toMatchObject({ ok: true, messagesApplied: 3 });

  const bad = await cli("issuer", "issue", ...common, "--invoice", "bad.json");
  expect(bad.code).toBe(1);
  expect(JSON.parse(bad.out)).toMatchObject({ ok: false, code: "BAD_INVOICE_INPUT" });
  expect(JSON.parse(bad.out).message).toContain("unitPriceFen");

  const issued = await cli("issuer", "issue", ...common, "--invoice", "inv.json", "--print-dir", "prints", "--no-auto-upload");
  expect(issued.code, issued.out + issued.err).toBe(0);
  const inv = JSON.parse(issued.out).invoice;
  expect(inv).toMatchObject({ invoiceCode: "137001900111", invoiceNumber: "00001001", grandTotalFen: 5650, printed: true });
  expect(readFileSync(join(dir, "prints", "137001900111-00001001.html"), "utf8")).toContain(inv.taxCode);
  expect((await cli("issuer", "issue", ...common, "--invoice", "inv.json", "--no-auto-upload")).code).toBe(0);
  const online = await cli("issuer", "issue", ...common, "--invoice", "inv.json", "--online");
  expect(JSON.parse(online.out)).toMatchObject({ ok: false, code: "OFFLINE_DATA_PENDING" });
  expect(JSON.parse((await cli("issuer", "void", ...common, "137001900111", "1002")).out).invoice.voided).toBe(true);
  const wrongPin = await cli("issuer", "list", ...common, "--pin", "00000000");
  expect(JSON.parse(wrongPin.out)).toMatchObject({ ok: false, code: "TYUKEY_DEVICE_PIN_ERROR", sw: 0x63c5 });
  expect((await cli("issuer", "login", ...common)).code).toBe(0); // resets nothing; the PIN counter resets on a right PIN

  const up = await cli("issuer", "upload", ...common);
  expect(JSON.parse(up.out)).toMatchObject({ ok: true, uploaded: 2, confirmedThrough: 3 });
  expect(bureau.store.invoiceCount()).toBe(2);
  // with --server, issuing uploads what is pending when the bureau answers
  const auto = JSON.parse((await cli("issuer", "issue", ...common, "--invoice", "inv.json")).out);
  expect(auto).toMatchObject({ ok: true, invoice: { invoiceNumber: "00001003" }, autoUpload: { uploaded: 1 } });
  expect(bureau.store.invoiceCount()).toBe(3);
  const list = JSON.parse((await cli("issuer", "list", ...common)).out);
  expect(list.invoices.map((i: { uploaded: boolean }) => i.uploaded)).toEqual([true, true, true]);
  expect(list.status.pendingOnUkey).toBe(0);
  const printed = await cli("issuer", "print", "--target", "sim:key.img", "137001900111", "1002");
  expect(printed.out).toContain("VOID");

  const healthy = await cli("diagnose", "--target", "sim:key.img", "--server", bureau.url, "--ca", "ca.pem", "--json");
  const d = JSON.parse(healthy.out);
  expect(d.checks.filter((c: { status: string }) => c.status !== "PASS")).toEqual([]);
  expect(healthy.code).toBe(0);
  await bureau.setFaults({ interception: true });
  try {
    const broken = await spawnCli("diagnose", "--target", "sim:key.img", "--server", bureau.url, "--ca", "ca.pem");
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/\[FAIL\] net.tls[\s\S]*interception/);
  } finally {
    await bureau.setFaults({ interception: false });
  }
}, 90_000);
