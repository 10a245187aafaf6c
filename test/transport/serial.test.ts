import { afterEach, describe, expect, it } from "vitest";
import * as F from "../../src/transport/serial-frame.ts";
import { SerialCardLogic, serveSerial, type SerialHandle } from "../../src/transport/serial-device.ts";
import { SerialChannel } from "../../src/transport/serial-channel.ts";
import { needTools } from "../support/tools.ts";
import { apdu, runScenario } from "./support/scenario.ts";
import { startPtyPair, type PtyPair } from "./support/pty.ts";
import { INS_ECHO, INS_MUTE, TEST_AID, TestCard, bytesOf, hexOf, testAtr } from "./support/test-card.ts";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("serial framing (golden bytes)", () => {
  it("CRC check values", () => {
    expect(F.crc8(ascii("123456789"))).toBe(0xf4);
    expect(F.crc16(ascii("123456789"))).toBe(0x29b1);
  });

  it("encodes SOF, LEN, SEQ, TYPE, HCRC, payload, CRC-16", () => {
    const frame = F.encodeSerialFrame({ seq: 7, type: F.TYPE_APDU, payload: bytesOf("00a404") });
    expect(hexOf(frame.subarray(0, 6))).toBe("a55a00030701");
    expect(frame[6]).toBe(F.crc8(bytesOf("00030701")));
    expect(hexOf(frame.subarray(7, 10))).toBe("00a404");
    const crc = F.crc16(frame.subarray(2, 10));
    expect(hexOf(frame.subarray(10))).toBe(crc.toString(16).padStart(4, "0"));
    expect(hexOf(F.encodeSerialFrame({ seq: 0, type: F.TYPE_POWER_ON, payload: new Uint8Array(0) }))).toBe("a55a00000002" + F.crc8(bytesOf("00000002")).toString(16).padStart(2, "0") + F.crc16(bytesOf("00000002" + F.crc8(bytesOf("00000002")).toString(16).padStart(2, "0"))).toString(16).padStart(4, "0"));
    expect(() => F.encodeSerialFrame({ seq: 0, type: 1, payload: new Uint8Array(0x10000) })).toThrow(RangeError);
  });

  it("a fixed golden frame", () => {
    // POWER_ON seq 0x2a: HCRC = CRC-8(00 00 2a 02) = 0x22, CRC = CRC-16(00 00 2a 02 22) = 0x3249,
    // computed with an independent bitwise implementation
    const frame = F.encodeSerialFrame({ seq: 0x2a, type: F.TYPE_POWER_ON, payload: new Uint8Array(0) });
    expect(hexOf(frame)).toBe("a55a00002a02223249");
  });

  it("resynchronises after garbage, a bad header check and a bad CRC, and reports the corrupt seq", () => {
    const good1 = F.encodeSerialFrame({ seq: 1, type: F.TYPE_APDU, payload: bytesOf("0102") });
    const good2 = F.encodeSerialFrame({ seq: 2, type: F.TYPE_APDU, payload: bytesOf("0304") });
    const corrupt = F.encodeSerialFrame({ seq: 9, type: F.TYPE_APDU, payload: bytesOf("0506") });
    corrupt[8] = (corrupt[8] as number) ^ 0xff;
    const badHeader = F.encodeSerialFrame({ seq: 3, type: F.TYPE_APDU, payload: bytesOf("07") });
    badHeader[6] = (badHeader[6] as number) ^ 0x01;
    const stream = new Uint8Array([0x00, 0xa5, 0xff, ...good1, 0xa5, 0x5a, ...corrupt, ...badHeader, ...good2]);
    const d = new F.SerialDeframer();
    const out = d.push(stream);
    expect(out.frames.map((f) => f.seq)).toEqual([1, 2]);
    expect(out.corrupt).toEqual([{ seq: 9, type: F.TYPE_APDU }]);
    expect(out.dropped).toBeGreaterThan(0);
    expect(d.buffered).toBe(0);
  });

  it("waits for a partial frame, then expires it after the inter-byte timeout", () => {
    const d = new F.SerialDeframer();
    const frame = F.encodeSerialFrame({ seq: 5, type: F.TYPE_APDU, payload: new Uint8Array(100) });
    expect(d.push(frame.subarray(0, 50), 0).frames).toEqual([]);
    expect(d.expire(50).dropped).toBe(0);
    expect(d.expire(200).dropped).toBeGreaterThan(0);
    expect(d.buffered).toBe(0);
    expect(d.push(frame, 300).frames).toHaveLength(1);
  });

  it("rejects a header claiming more than the receiver allows at once", () => {
    const d = new F.SerialDeframer(16);
    const big = F.encodeSerialFrame({ seq: 1, type: F.TYPE_APDU, payload: new Uint8Array(17) });
    const out = d.push(big);
    expect(out.frames).toEqual([]);
    expect(d.buffered).toBeLessThan(big.length);
  });
});

describe("serial card logic", () => {
  it("power on answers ATR; APDUs need power; mute is an ERROR frame; unknown types are refused", () => {
    const logic = new SerialCardLogic(new TestCard());
    expect(logic.handle({ seq: 1, type: F.TYPE_APDU, payload: apdu(0, 0xa4, 4, 0, TEST_AID) })).toEqual({ seq: 1, type: F.TYPE_ERROR, payload: Uint8Array.of(F.ERROR_NOT_POWERED) });
    expect(hexOf(logic.handle({ seq: 2, type: F.TYPE_POWER_ON, payload: new Uint8Array(0) }).payload)).toBe(hexOf(testAtr()));
    expect(hexOf(logic.handle({ seq: 3, type: F.TYPE_APDU, payload: apdu(0, 0xa4, 4, 0, TEST_AID) }).payload)).toBe("9000");
    expect(logic.handle({ seq: 4, type: F.TYPE_APDU, payload: Uint8Array.of(0x80, INS_MUTE, 0, 0) })).toEqual({ seq: 4, type: F.TYPE_ERROR, payload: Uint8Array.of(F.ERROR_CARD_MUTE) });
    expect(logic.handle({ seq: 5, type: 0x55, payload: new Uint8Array(0) }).payload[0]).toBe(F.ERROR_UNKNOWN_TYPE);
    expect(logic.handle({ seq: 6, type: F.TYPE_POWER_OFF, payload: new Uint8Array(0) }).type).toBe(F.TYPE_ACK);
  });
});

describe("serial over a socat pty pair", () => {
  const ok = needTools("socat");
  let pty: PtyPair | undefined;
  let device: SerialHandle | undefined;
  let channel: SerialChannel | undefined;
  afterEach(async () => {
    await channel?.close();
    await device?.close();
    await pty?.stop();
    channel = device = pty = undefined;
  });

  it.skipIf(!ok)("carries the APDU scenario, short and extended", async () => {
    pty = await startPtyPair();
    device = await serveSerial(new TestCard(), { path: pty.a });
    channel = await SerialChannel.open(pty.b, { timeoutMs: 2000 });
    await runScenario(channel);
  });

  it.skipIf(!ok)("reports a mute card, recovers on power-on, and times out on a silent line", async () => {
    pty = await startPtyPair();
    device = await serveSerial(new TestCard(), { path: pty.a });
    channel = await SerialChannel.open(pty.b, { timeoutMs: 1500 });
    await channel.powerOn();
    await expect(channel.transmit(Uint8Array.of(0x80, INS_MUTE, 0, 0))).rejects.toMatchObject({ code: "NO_CARD" });
    await channel.powerOn();
    expect(hexOf(await channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(3))))).toBe("039000");
    await device.close();
    device = undefined;
    await expect(channel.transmit(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(3)))).rejects.toMatchObject({ code: "TIMEOUT" });
  });

  it("a missing port is UNAVAILABLE", async () => {
    await expect(SerialChannel.open("/dev/ukeysim-no-such-port")).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});
