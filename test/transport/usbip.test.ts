/**
 * The whole USB path without a kernel: serveUsbip <- TCP -> userspace USB/IP client ->
 * CCID host driver, plus the real `usbip` tool listing our server.
 */
import { execFile } from "node:child_process";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CcidChannel } from "../../src/transport/ccid-host.ts";
import { ChannelError } from "../../src/transport/index.ts";
import { importUsbipDevice, listUsbipDevices } from "../../src/transport/usbip-client.ts";
import { serveUsbip, type ServerHandle } from "../../src/transport/usbip-server.ts";
import { needTools } from "../support/tools.ts";
import { apdu, runScenario } from "./support/scenario.ts";
import { INS_ECHO, INS_MUTE, TestCard, hexOf } from "./support/test-card.ts";

let servers: ServerHandle[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(card = new TestCard(), device = {}): Promise<ServerHandle> {
  const server = await serveUsbip(card, { port: 0, device });
  servers.push(server);
  return server;
}

async function open(server: ServerHandle, timeoutMs = 2000): Promise<CcidChannel> {
  const device = await importUsbipDevice(server.host, server.port, "1-1");
  return CcidChannel.open(device, server.target, { timeoutMs });
}

describe("USB/IP: userspace client -> server -> CCID -> card", () => {
  it("lists the exported device with its CCID interface", async () => {
    const server = await start();
    const devices = await listUsbipDevices(server.host, server.port);
    expect(devices).toHaveLength(1);
    expect(devices[0]).toMatchObject({ busid: "1-1", idVendor: 0x1209, idProduct: 0x0001, bNumInterfaces: 1 });
    expect(devices[0]?.interfaces).toEqual([{ bInterfaceClass: 0x0b, bInterfaceSubClass: 0, bInterfaceProtocol: 0 }]);
  });

  it("carries the APDU scenario, short and extended", async () => {
    const card = new TestCard();
    const server = await start(card);
    const channel = await open(server);
    await runScenario(channel);
    expect(card.commands).toBeGreaterThanOrEqual(8);
    await channel.close();
  });

  it("refuses a second import and an unknown busid", async () => {
    const server = await start();
    const first = await importUsbipDevice(server.host, server.port, "1-1");
    await expect(importUsbipDevice(server.host, server.port, "1-1")).rejects.toMatchObject({ code: "NO_CARD" });
    await expect(importUsbipDevice(server.host, server.port, "9-9")).rejects.toThrow(/refused/);
    await first.close();
  });

  it("a card that goes mute (power cut) gives NO_CARD, and power-on brings it back", async () => {
    const server = await start();
    const channel = await open(server);
    await channel.powerOn();
    await expect(channel.transmit(Uint8Array.of(0x80, INS_MUTE, 0, 0))).rejects.toMatchObject({ code: "NO_CARD" });
    await expect(channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1)))).rejects.toMatchObject({ code: "NO_CARD" });
    await channel.powerOn();
    expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1))))).toBe("019000");
    await channel.close();
  });

  it("a slow card answers after time extensions (bStatus 0x80) and the driver waits through them", async () => {
    const server = await start(new TestCard(), { cardLatencyMs: () => 1500, timeExtensionIntervalMs: 100 });
    const channel = await open(server, 700); // shorter than the card: only the extensions keep it alive
    await channel.powerOn();
    expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(7))))).toBe("079000");
    await channel.close();
  });

  it("a card that keeps asking for time gets TIMEOUT after maxTimeExtensions", async () => {
    const server = await start(new TestCard(), { cardLatencyMs: () => 5000, timeExtensionIntervalMs: 10 });
    const device = await importUsbipDevice(server.host, server.port, "1-1");
    const channel = await CcidChannel.open(device, server.target, { timeoutMs: 1000, maxTimeExtensions: 5 });
    await channel.powerOn();
    await expect(channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1)))).rejects.toThrow(/more than 5 time extensions/);
    await channel.close();
  });

  it("a reader that never answers times out, the URB is unlinked, and the channel recovers", async () => {
    const server = await start(new TestCard(), { cardLatencyMs: (a: Uint8Array) => (a[2] === 0xff ? 1200 : 0), timeExtensionIntervalMs: 10_000 });
    const channel = await open(server, 500);
    await channel.powerOn();
    await expect(channel.transmit(apdu(0x80, INS_ECHO, 0xff, 0, Uint8Array.of(1)))).rejects.toMatchObject({ code: "TIMEOUT" });
    await new Promise((r) => setTimeout(r, 900)); // the late answer arrives and is dropped as stale
    expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(2))))).toBe("029000");
    await channel.close();
  });

  it("a server that goes away gives DISCONNECTED; a refused connection gives UNAVAILABLE", async () => {
    const server = await start();
    const channel = await open(server);
    await channel.powerOn();
    await server.close();
    servers = [];
    await expect(channel.transmit(Uint8Array.of(0, 0xa4, 4, 0))).rejects.toMatchObject({ code: "DISCONNECTED" });
    const err = await importUsbipDevice(server.host, server.port, "1-1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelError);
    expect((err as ChannelError).code).toBe("UNAVAILABLE");
  });

  it("drops a connection that sends garbage, and keeps serving others", async () => {
    const server = await start();
    await new Promise<void>((resolve) => {
      const s = connect(server.port, server.host, () => s.write(Buffer.from("GET / HTTP/1.1\r\n\r\n")));
      s.on("close", () => resolve());
      s.on("error", () => resolve());
    });
    const channel = await open(server);
    await channel.powerOn();
    await channel.close();
  });

  it("stalls unknown control requests and answers standard ones", async () => {
    const server = await start();
    const device = await importUsbipDevice(server.host, server.port, "1-1");
    await expect(device.controlIn({ bmRequestType: 0x80, bRequest: 6, wValue: 0x0600, wIndex: 0, wLength: 10 }, 1000)).rejects.toThrow(/stalled/);
    const status = await device.controlIn({ bmRequestType: 0x80, bRequest: 0, wValue: 0, wIndex: 0, wLength: 2 }, 1000);
    expect(hexOf(status)).toBe("0000");
    const clocks = await device.controlIn({ bmRequestType: 0xa1, bRequest: 2, wValue: 0, wIndex: 0, wLength: 4 }, 1000);
    expect(hexOf(clocks)).toBe("fc0d0000");
    const rates = await device.controlIn({ bmRequestType: 0xa1, bRequest: 3, wValue: 0, wIndex: 0, wLength: 4 }, 1000);
    expect(hexOf(rates)).toBe("80250000");
    const product = await device.controlIn({ bmRequestType: 0x80, bRequest: 6, wValue: 0x0302, wIndex: 0x0409, wLength: 255 }, 1000);
    expect(Buffer.from(product.subarray(2)).toString("utf16le")).toMatch(/ukeysim/);
    await device.close();
  });
});

describe("USB/IP against the real usbip tool", () => {
  const ok = needTools("usbip");
  it.skipIf(!ok)("`usbip list -r` lists our device with its CCID interface (class 0b)", async () => {
    const server = await start();
    // execFile, not spawnSync: a blocked event loop could not serve the request
    const result = await new Promise<{ stdout: string; stderr: string; status: number }>((resolve) =>
      execFile("usbip", ["--tcp-port", String(server.port), "list", "-r", "127.0.0.1"], { timeout: 10_000 }, (error, stdout, stderr) =>
        resolve({ stdout, stderr, status: error ? 1 : 0 })));
    expect(result.stderr + result.stdout).toContain("1-1");
    expect(result.stdout).toMatch(/1209:0001/);
    expect(result.stdout).toMatch(/Smart Card|0b\/00\/00/i);
    expect(result.status).toBe(0);
  });
});

describe("USB/IP server limits", () => {
  it("drops a client that parks too many IN URBs", async () => {
    const { MAX_PARKED_URBS } = await import("../../src/transport/usbip-server.ts");
    const U = await import("../../src/transport/usbip-codec.ts");
    const server = await serveUsbip(new TestCard(), { port: 0 });
    try {
      const socket = connect(server.port, server.host);
      await new Promise((r) => socket.once("connect", r));
      socket.write(U.encodeOpReqImport("1-1"));
      socket.write(U.encodeCmdSubmit({ seqnum: 1, devid: 0x10002, direction: 0, ep: 0, transferFlags: 0, transferBufferLength: 0, startFrame: 0, numberOfPackets: 0, interval: 0, setup: { bmRequestType: 0, bRequest: 9, wValue: 1, wIndex: 0, wLength: 0 }, data: new Uint8Array(0) }));
      const closed = new Promise((r) => socket.once("close", r));
      socket.on("error", () => undefined);
      for (let i = 0; i < MAX_PARKED_URBS + 2; i++) {
        socket.write(U.encodeCmdSubmit({ seqnum: 10 + i, devid: 0x10002, direction: 1, ep: 2, transferFlags: 0, transferBufferLength: 64, startFrame: 0, numberOfPackets: 0, interval: 0, setup: U.NO_SETUP, data: new Uint8Array(0) }));
      }
      socket.resume(); // read the replies, or 'close' never comes
      await closed;
      const channel = await open(server);
      await channel.powerOn();
      await channel.close();
    } finally {
      await server.close();
    }
  });
});

describe("USB/IP server bookkeeping", () => {
  it("IN URBs answered at once are not counted as parked (600 exchanges)", async () => {
    const server = await serveUsbip(new TestCard(), { port: 0 });
    try {
      const channel = await open(server);
      await channel.powerOn();
      for (let i = 0; i < 600; i++) expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(i & 0xff))))).toBe(`${(i & 0xff).toString(16).padStart(2, "0")}9000`);
      await channel.close();
    } finally {
      await server.close();
    }
  });
});
