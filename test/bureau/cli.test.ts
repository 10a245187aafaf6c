/** `ukeysim bureau serve` as a process: it prints its URL, serves, keeps its database, stops on SIGTERM. */
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { call } from "./fixture.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");

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

  it("refuses bad options with a clear message and exit code 1", () => {
    for (const [args, pattern] of [
      [["--port", "99999"], /port must be an integer 0-65535/],
      [["--fault", "http502=maybe"], /fault http502 must be true or false/],
      [["--fault", "nonsense"], /name=value/],
      [["--seed", "-4"], /seed must be a non-negative integer/],
      [["--master-key", "abc"], /master key must be 32 hex digits/],
    ] as const) {
      const run = spawnSync(process.execPath, ["--import", "tsx", MAIN, "bureau", "serve", ...args], { cwd: ROOT, encoding: "utf8" });
      expect(run.status, args.join(" ")).toBe(1);
      expect(run.stderr).toMatch(pattern);
    }
  });
});
