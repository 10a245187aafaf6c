import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ChannelError, formatTarget, openChannel, parseTarget, serveUsbip, type ServerHandle } from "../../src/transport/index.ts";
import { runScenario } from "./support/scenario.ts";
import { INS_ECHO, TestCard, hexOf } from "./support/test-card.ts";
import { apdu } from "./support/scenario.ts";

describe("parseTarget", () => {
  it("parses every scheme", () => {
    expect(parseTarget("sim:key.img")).toEqual({ scheme: "sim", image: "key.img" });
    expect(parseTarget("usbip://127.0.0.1:3241/1-1")).toEqual({ scheme: "usbip", host: "127.0.0.1", port: 3241, busid: "1-1" });
    expect(parseTarget("usbip://lab-pi/2-1.4")).toEqual({ scheme: "usbip", host: "lab-pi", port: 3240, busid: "2-1.4" });
    expect(parseTarget("usbip://[::1]:3240/1-1")).toEqual({ scheme: "usbip", host: "::1", port: 3240, busid: "1-1" });
    expect(parseTarget("pcsc:Virtual PCD 00 00")).toEqual({ scheme: "pcsc", reader: "Virtual PCD 00 00" });
    expect(parseTarget("pcsc:Virtual%20PCD%2000%2000")).toEqual({ scheme: "pcsc", reader: "Virtual PCD 00 00" });
    expect(parseTarget("serial:/dev/ttyUSB0")).toEqual({ scheme: "serial", path: "/dev/ttyUSB0", baudRate: 115200 });
    expect(parseTarget("serial:/dev/ttyACM1?baud=9600")).toEqual({ scheme: "serial", path: "/dev/ttyACM1", baudRate: 9600 });
    expect(parseTarget("usb:1209:0001")).toEqual({ scheme: "usb", vendorId: 0x1209, productId: 1 });
    expect(parseTarget("usb:0x096E:0x0858")).toEqual({ scheme: "usb", vendorId: 0x096e, productId: 0x0858 });
  });

  it("round-trips through formatTarget", () => {
    for (const uri of ["sim:key.img", "usbip://127.0.0.1:3241/1-1", "usbip://[::1]:3240/1-1", "pcsc:Virtual PCD 00 00", "serial:/dev/ttyS0?baud=9600", "usb:1209:0001"]) {
      expect(formatTarget(parseTarget(uri))).toBe(uri);
    }
  });

  const bad = ["", "key.img", ":x", "ftp://x", "sim:", "usbip://", "usbip://host:99999/1-1", "usbip://host:0/1-1", "usbip://host:80", "usbip://host:x/1-1", "usbip://ho st/1-1",
    "pcsc:", "pcsc:%E0%A4%A", "serial:", "serial:/dev/x?baud=0", "serial:/dev/x?baud=fast", "serial:/dev/x?speed=9600", "serial:/dev/x?baud=9600?x", "usb:1209", "usb:12345:1", "usb:zz:01"];
  for (const uri of bad) {
    it(`rejects ${JSON.stringify(uri)} with BAD_TARGET`, () => {
      const error = (() => {
        try {
          parseTarget(uri);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ChannelError);
      expect((error as ChannelError).code).toBe("BAD_TARGET");
    });
  }
});

describe("openChannel", () => {
  let servers: ServerHandle[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  it("sim: uses the injected card factory, and says so when there is none", async () => {
    const channel = await openChannel("sim:memory", { simCard: () => new TestCard() });
    expect(channel.target).toBe("sim:memory");
    await runScenario(channel);
    await expect(openChannel("sim:memory")).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it("usbip: carries the scenario, and reconnects on powerOn after the device went away", async () => {
    const card = new TestCard();
    const first = await serveUsbip(card, { port: 0 });
    const port = first.port;
    const channel = await openChannel(`usbip://127.0.0.1:${port}/1-1`, { timeoutMs: 1000 });
    await runScenario(channel);
    await channel.powerOn();
    await first.close(); // unplugged
    await expect(channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1)))).rejects.toMatchObject({ code: "DISCONNECTED" });
    await expect(channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1)))).rejects.toMatchObject({ code: "DISCONNECTED" });
    servers.push(await serveUsbip(card, { port })); // plugged back in
    await channel.powerOn();
    expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1))))).toBe("019000");
    await channel.close();
  });

  it("usb: a clear error where there is no USB subsystem", async () => {
    const error = await openChannel("usb:1209:0001").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelError);
    if (!existsSync("/sys/bus/usb")) {
      expect((error as ChannelError).code).toBe("UNAVAILABLE");
      expect((error as Error).message).toMatch(/no USB subsystem/);
    } else {
      expect(["NO_CARD", "UNAVAILABLE"]).toContain((error as ChannelError).code);
    }
  });

  it("unreachable targets fail with the right code", async () => {
    await expect(openChannel("usbip://127.0.0.1:1/1-1")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(openChannel("serial:/dev/ukeysim-none")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(openChannel("nope:x")).rejects.toMatchObject({ code: "BAD_TARGET" });
  });
});
