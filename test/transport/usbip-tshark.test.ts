/**
 * A USB/IP session captured on loopback decodes, with Wireshark's own dissectors, as
 * usbip -> usbccid -> iso7816, with no malformed frame and no error-level expert note.
 */
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CcidChannel } from "../../src/transport/ccid-host.ts";
import { importUsbipDevice } from "../../src/transport/usbip-client.ts";
import { serveUsbip } from "../../src/transport/usbip-server.ts";
import { needTools } from "../support/tools.ts";
import { runScenario } from "./support/scenario.ts";
import { TestCard } from "./support/test-card.ts";
import { TSHARK_DECODE_AS } from "./support/tshark.ts";

const CAPTURE_START_TIMEOUT_MS = 15_000;

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { maxBuffer: 16 << 20 }, (e, out, err) => (e ? reject(new Error(`${cmd}: ${err || e.message}`)) : resolve(out))));
}

describe("tshark decodes our USB/IP session", () => {
  const ok = needTools("tshark");
  it.skipIf(!ok)("as usbip + usbccid + iso7816, without malformed frames", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-tshark-"));
    const file = join(dir, "usbip.pcapng");
    const server = await serveUsbip(new TestCard(), { port: 0 });
    const capture = spawn("tshark", ["-i", "lo", "-f", `tcp port ${server.port}`, "-w", file], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("tshark did not start capturing")), CAPTURE_START_TIMEOUT_MS);
        let text = "";
        capture.stderr.on("data", (d: Buffer) => {
          text += d.toString();
          if (text.includes("Capture started") || text.includes("File:")) {
            clearTimeout(timer);
            resolve();
          }
        });
        capture.on("exit", () => reject(new Error(`tshark exited: ${text}`)));
      });
      const channel = await CcidChannel.open(await importUsbipDevice(server.host, server.port, "1-1"), server.target);
      await runScenario(channel);
      await channel.close();
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      capture.kill("SIGINT");
      await new Promise((r) => capture.once("exit", r));
      await server.close();
    }
    try {
      const out = await run("tshark", ["-r", file, "-d", `tcp.port==${server.port},usbip`, ...TSHARK_DECODE_AS, "-T", "fields", "-E", "separator=|", "-e", "frame.protocols", "-e", "_ws.malformed", "-e", "_ws.expert.severity"]);
      const rows = out.trim().split("\n").map((l) => l.split("|"));
      const protocols = rows.map((r) => r[0] ?? "");
      expect(protocols.filter((p) => p.includes("usbip")).length).toBeGreaterThan(20);
      expect(protocols.some((p) => p.endsWith("usbip:usbccid"))).toBe(true);
      expect(protocols.filter((p) => p.includes("usbccid:iso7816")).length).toBeGreaterThanOrEqual(8);
      expect(rows.filter((r) => r[1])).toEqual([]); // no _ws.malformed
      const ERROR_SEVERITY = 8388608; // PI_ERROR
      expect(rows.filter((r) => (r[2] ?? "").split(",").some((s) => Number(s) >= ERROR_SEVERITY))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
