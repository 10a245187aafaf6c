/** `ukeysim bureau serve` as a process: it prints its URL, serves, keeps its database, stops on SIGTERM. */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { call } from "./fixture.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
/** Two cores: two CLI processes at a time. */
const CLI_PARALLEL = 2;

describe("ukeysim bureau serve", () => {
  it("serves HTTPS on loopback with a SQLite file in WAL mode and stops on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-bureau-cli-"));
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "bureau", "serve", "--port", "0", "--db", join(dir, "bureau.db"), "--ca-out", join(dir, "ca.pem"), "--fault", "clockSkewMs=60000"], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    try {
      const line = await new Promise<string>((resolveLine, reject) => {
        createInterface({ input: child.stdout! }).once("line", resolveLine);
        child.once("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      const ready = JSON.parse(line);
      expect(ready.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(ready.faults.clockSkewMs).toBe(60_000);
      const caCertPem = readFileSync(join(dir, "ca.pem"), "utf8");
      const before = Date.now();
      const time = await call({ url: ready.url, caCertPem }, "/api/v1/time");
      expect(time.status).toBe(200);
      expect(time.json.serverTime).toBeGreaterThanOrEqual(before + 60_000);
      expect(time.json.serverTime).toBeLessThan(Date.now() + 60_000 + 5_000);
      const db = new Database(join(dir, "bureau.db"), { readonly: true });
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe("1");
      db.close();
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--profile registers the profile's taxpayer and device and speaks to the card with its master key", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "bureau", "serve", "--profile", join(ROOT, "fixtures/profile-default.json"), "--device-serial", "UK00000000000001"], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    try {
      const line = await new Promise<string>((resolveLine, reject) => {
        createInterface({ input: child.stdout! }).once("line", resolveLine);
        child.once("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      const ready = JSON.parse(line);
      // The TLS CA is not written (no --ca-out): this client skips verification, which is all it needs here.
      const { request } = await import("node:https");
      const json = await new Promise<any>((resolveJson, reject) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        request(new URL("/api/v1/sync?taxpayerId=91370100MA3C123456&deviceSerial=UK00000000000001&challenge=" + "01".repeat(16), ready.url), { rejectUnauthorized: false, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolveJson(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
        }).on("error", reject).end();
      });
      expect(json.payload.stock.map((r: { typeCode: string }) => r.typeCode)).toEqual(["02601", "02602"]);
      expect(json.issuerMessages.map((m: { name: string }) => m.name)).toEqual(["EXTERNAL_AUTHENTICATE", "SYNC_PURCHASES", "SET_LIMITS"]);
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("refuses bad options and a bad profile with a clear message and exit code 2 (bad usage or input)", async () => {
    const cases: [string[], number, RegExp][] = [
      [["--port", "99999"], 2, /port must be an integer 0-65535/],
      [["--fault", "http502=maybe"], 2, /fault http502 must be true or false/],
      [["--fault", "nonsense"], 2, /name=value/],
      [["--seed", "-4"], 2, /seed must be a non-negative integer/],
      [["--master-key", "abc"], 2, /master key must be 32 hex digits/],
      [["--profile", join(ROOT, "package.json"), "--device-serial", "UK1"], 2, /^ukeysim: limits must be an object/],
      [["--device-serial", "UK1"], 2, /--profile and --device-serial go together/],
    ];
    const runs: { status: number | null; stderr: string }[] = [];
    for (let i = 0; i < cases.length; i += CLI_PARALLEL) {
      runs.push(...(await Promise.all(cases.slice(i, i + CLI_PARALLEL).map(([args]) => runCli(["bureau", "serve", ...args])))));
    }
    runs.forEach((run, i) => {
      const [args, status, pattern] = cases[i]!;
      expect(run.status, args.join(" ")).toBe(status);
      expect(run.stderr, args.join(" ")).toMatch(pattern);
    });
  });
});

function runCli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("exit", (status) => resolveRun({ status, stderr }));
  });
}
