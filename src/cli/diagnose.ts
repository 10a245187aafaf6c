/**
 * ukeysim diagnose --target URI --server URL [--ca FILE] [--json] [--pin PIN] [--db FILE]
 * The troubleshooting article's checks, in order; exits 1 when any check FAILs.
 */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { runDiagnosis, HostDb, type CheckResult } from "../host/index.ts";
import { openTarget, WALL_CLOCK, type OpenedTarget } from "./target.ts";
import { caPemOf, parseTimeout, report } from "./issuer.ts";

const MARK: Record<CheckResult["status"], string> = { PASS: "PASS", FAIL: "FAIL", WARN: "WARN", SKIP: "SKIP" };

export function registerDiagnose(program: Command): void {
  program
    .command("diagnose")
    .description("check why invoicing cannot reach the server: Ukey, PIN, key usage, certificates and CRL, clocks, DNS, TCP, TLS (interception), HTTP, pending uploads")
    .requiredOption("--target <uri>", "the Ukey: sim:IMAGE, usbip://HOST:PORT/BUSID, pcsc:READER, serial:PATH, usb:VID:PID")
    .requiredOption("--server <url>", "the bureau, https://host:port")
    .option("--ca <file>", "PEM of the CA the bureau's TLS certificate chains to (default: the system roots)")
    .option("--pin <text>", "Ukey PIN, to count the Ukey's pending uploads (or UKEYSIM_PIN)")
    .option("--db <file>", "local database, to count pending uploads")
    .option("--timeout <ms>", "network timeout per check", parseTimeout, 5000)
    .option("--json", "print JSON")
    .action(async (o: { target: string; server: string; ca?: string; pin?: string; db?: string; timeout: number; json?: boolean }) => {
      let target: OpenedTarget | undefined;
      let db: HostDb | undefined;
      try {
        try {
          target = await openTarget(o.target);
        } catch {
          target = undefined; // reported by the ukey.present check
        }
        if (o.db && existsSync(o.db)) db = new HostDb(o.db);
        const pin = o.pin ?? process.env.UKEYSIM_PIN;
        const d = await runDiagnosis({
          ...(target ? { channel: target.channel } : {}), serverUrl: o.server, caPem: caPemOf(o.ca), clock: WALL_CLOCK, timeoutMs: o.timeout,
          ...(pin ? { pin } : {}), ...(db ? { db } : {}),
        });
        if (o.json) console.log(JSON.stringify(d));
        else {
          for (const c of d.checks) {
            console.log(`[${MARK[c.status]}] ${c.id.padEnd(16)} ${c.title}`);
            if (c.status !== "PASS") console.log(`       cause: ${c.cause}${c.fix ? `\n       fix:   ${c.fix}` : ""}`);
          }
          console.log(d.ok ? "all checks passed" : `${d.checks.filter((c) => c.status === "FAIL").length} check(s) failed`);
        }
        if (!d.ok) process.exitCode = 1;
      } catch (error) {
        report(o, error);
      } finally {
        db?.close();
        await target?.close();
      }
    });
}
