/**
 * A pcscd for tests, with only the vpcd reader on a port of our choosing. pcsc-lite 1.9
 * serves its clients on the fixed socket /run/pcscd/pcscd.comm, so one pcscd runs at a
 * time: when another one is already running we say so instead of fighting it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quickAckRouteCommand, VPCD_QUICKACK_ADDRESS } from "../../../src/transport/vpcd.ts";

export const VPCD_DRIVER = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
export const VPCD_READER = "Virtual PCD 00 00";
const PID_FILE = "/run/pcscd/pcscd.pid";
const READY_TIMEOUT_MS = 10_000;

export interface Pcscd {
  port: number;
  stop(): Promise<void>;
}

export function otherPcscdRunning(): string | undefined {
  if (!existsSync(PID_FILE)) return undefined;
  const pid = Number(readFileSync(PID_FILE, "utf8").trim());
  if (!pid) return undefined;
  try {
    process.kill(pid, 0);
    return `pcscd (pid ${pid}) is already running; stop it to run the vpcd tests`;
  } catch {
    return undefined;
  }
}

/** Two consecutive free ports: vpcd listens on CHANNELID and CHANNELID+1. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "0.0.0.0", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const next = await new Promise<boolean>((resolve) => {
      const s = createServer().once("error", () => resolve(false)).listen(port + 1, "0.0.0.0", () => s.close(() => resolve(true)));
    });
    if (next && port < 65535) return port;
  }
  throw new Error("no free port pair");
}

export async function startPcscd(): Promise<Pcscd> {
  const port = await freePortPair();
  const dir = mkdtempSync(join(tmpdir(), "ukeysim-pcscd-"));
  const conf = join(dir, "conf");
  spawnSync("mkdir", ["-p", conf]);
  writeFileSync(join(conf, "vpcd"), `FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x${port.toString(16)}\nLIBPATH ${VPCD_DRIVER}\nCHANNELID 0x${port.toString(16)}\n`);
  const log = join(dir, "pcscd.log");
  const child: ChildProcess = spawn("sh", ["-c", `exec pcscd --foreground --debug --config ${conf} > ${log} 2>&1`], { stdio: "ignore" });
  const started = Date.now();
  while (!(existsSync(log) && readFileSync(log, "utf8").includes("daemon ready"))) {
    if (child.exitCode !== null) throw new Error(`pcscd exited: ${readFileSync(log, "utf8").slice(-500)}`);
    if (Date.now() - started > READY_TIMEOUT_MS) throw new Error("pcscd did not become ready");
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Install the quickack route for the vpcd link when we may (root); returns the address to use. */
export function vpcdAddress(): string {
  const [cmd, ...args] = quickAckRouteCommand();
  const result = spawnSync(cmd as string, args, { stdio: "ignore" });
  return result.status === 0 ? VPCD_QUICKACK_ADDRESS : "127.0.0.1";
}
