import { Command } from "commander";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { parseHostPort, registerServe, startServing } from "../../src/cli/serve.ts";
import { listUsbipDevices, openChannel } from "../../src/transport/index.ts";
import { runScenario } from "../transport/support/scenario.ts";
import { TestCard } from "../transport/support/test-card.ts";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe("ukeysim serve", () => {
  it("parses [HOST:]PORT", () => {
    expect(parseHostPort("3241")).toEqual({ host: "127.0.0.1", port: 3241 });
    expect(parseHostPort("0.0.0.0:3240")).toEqual({ host: "0.0.0.0", port: 3240 });
    expect(parseHostPort("[::1]:3240")).toEqual({ host: "::1", port: 3240 });
    expect(parseHostPort("lab:1", 9)).toEqual({ host: "lab", port: 1 });
    for (const bad of ["", "x:", ":", "0", "70000", "a b:1", "host:port"]) expect(() => parseHostPort(bad)).toThrow(RangeError);
  });

  it("serves a card over USB/IP with a trace, and shuts down cleanly on SIGINT", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-serve-"));
    const trace = join(dir, "trace.jsonl");
    const port = await freePort();
    const program = new Command().exitOverride();
    registerServe(program, () => ({ card: new TestCard(), close: () => undefined }));
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const running = program.parseAsync(["serve", "--image", "key.img", "--usbip", `127.0.0.1:${port}`, "--trace", trace], { from: "user" });
    try {
      await vi.waitFor(async () => expect(await listUsbipDevices("127.0.0.1", port)).toHaveLength(1), { timeout: 5000, interval: 50 });
      const channel = await openChannel(`usbip://127.0.0.1:${port}/1-1`);
      await runScenario(channel);
      await channel.close();
      process.emit("SIGINT");
      await running;
      expect(log.mock.calls.flat().join("\n")).toMatch(/usbip:\/\/127\.0\.0\.1:\d+\/1-1/);
      await expect(listUsbipDevices("127.0.0.1", port, 500)).rejects.toMatchObject({ code: "UNAVAILABLE" });
      const events = readFileSync(trace, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { kind: string });
      expect(events.filter((e) => e.kind === "apdu").length).toBeGreaterThanOrEqual(8);
      expect(events.some((e) => e.kind === "power")).toBe(true);
    } finally {
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("closes what it opened when a later transport fails", async () => {
    const port = await freePort();
    await expect(startServing(new TestCard(), { image: "x", usbip: { host: "127.0.0.1", port }, serial: "/dev/ukeysim-none" })).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(listUsbipDevices("127.0.0.1", port, 500)).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});

describe("ukeysim serve as a process", () => {
  it("serves the chip OS (--image memory) and exits 0 on SIGTERM", async () => {
    const { spawn } = await import("node:child_process");
    const port = await freePort();
    const root = join(import.meta.dirname, "../..");
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "serve", "--image", "memory", "--usbip", `127.0.0.1:${port}`], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await vi.waitFor(() => expect(out).toMatch(/usbip:\/\/127\.0\.0\.1:\d+\/1-1/), { timeout: 20_000, interval: 100 });
      const channel = await openChannel(`usbip://127.0.0.1:${port}/1-1`);
      const atr = await channel.powerOn();
      expect(atr[0]).toBe(0x3b);
      const select = await channel.transmit(Uint8Array.of(0x00, 0xa4, 0x04, 0x00, 0x00));
      expect(select.length).toBeGreaterThanOrEqual(2);
      await channel.close();
    } finally {
      child.kill("SIGTERM");
    }
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(out).toMatch(/SIGTERM, shutting down/);
    expect(code).toBe(0);
  }, 40_000);
});

describe("ukeysim serve traces", () => {
  it("with the chip OS, each APDU appears once in the trace (the COS writes it, not the transport)", async () => {
    const { spawn } = await import("node:child_process");
    const dir = mkdtempSync(join(tmpdir(), "ukeysim-serve-trace-"));
    const trace = join(dir, "trace.jsonl");
    const port = await freePort();
    const root = join(import.meta.dirname, "../..");
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "serve", "--image", "memory", "--usbip", `127.0.0.1:${port}`, "--trace", trace], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await vi.waitFor(() => expect(out).toMatch(/usbip:\/\//), { timeout: 20_000, interval: 100 });
      const channel = await openChannel(`usbip://127.0.0.1:${port}/1-1`);
      await channel.powerOn();
      await channel.transmit(Uint8Array.of(0x00, 0xa4, 0x04, 0x00, 0x00));
      await channel.transmit(Uint8Array.of(0x00, 0x84, 0x00, 0x00, 0x08));
      await channel.close();
    } finally {
      child.kill("SIGTERM");
    }
    await new Promise((resolve) => child.once("exit", resolve));
    const events = readFileSync(trace, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { kind: string; command?: string });
    const apdus = events.filter((e) => e.kind === "apdu").map((e) => e.command);
    expect(apdus).toEqual(["00a4040000", "0084000008"]);
    rmSync(dir, { recursive: true, force: true });
  }, 40_000);
});
