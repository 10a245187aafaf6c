/**
 * Malformed, truncated and oversized input gets an error or a wait for more bytes, never a
 * crash, a foreign exception or a hang: every parser and device model, fed by fast-check.
 */
import fc from "fast-check";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { ByteQueue } from "../../src/transport/bytes.ts";
import * as C from "../../src/transport/ccid-codec.ts";
import { CcidUsbDevice } from "../../src/transport/ccid-device.ts";
import { ChannelError, parseTarget, serveUsbip } from "../../src/transport/index.ts";
import * as F from "../../src/transport/serial-frame.ts";
import { SerialCardLogic } from "../../src/transport/serial-device.ts";
import { CcidChannel } from "../../src/transport/ccid-host.ts";
import { importUsbipDevice } from "../../src/transport/usbip-client.ts";
import * as U from "../../src/transport/usbip-codec.ts";
import { VpcdCard } from "../../src/transport/vpcd.ts";
import { TestCard } from "./support/test-card.ts";

const bytes = (max = 600) => fc.uint8Array({ maxLength: max });
const RUNS = { numRuns: 300 };

/** Run a decoder over a queue until it waits; it may only throw ChannelError PROTOCOL. */
function drain<T>(input: Uint8Array, decode: (q: ByteQueue) => T | undefined): void {
  const q = new ByteQueue();
  q.push(input);
  try {
    for (let i = 0; i < 1000; i++) {
      const before = q.length;
      const out = decode(q);
      if (out === undefined) {
        expect(q.length).toBe(before); // waiting consumes nothing
        return;
      }
      expect(q.length).toBeLessThan(before); // progress: no endless loop
    }
  } catch (error) {
    expect(error).toBeInstanceOf(ChannelError);
    expect((error as ChannelError).code).toBe("PROTOCOL");
  }
}

/** Valid-looking headers with random fields reach deeper than random bytes. */
const urbLike = fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 9), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.constantFrom(0, 1, 2), fc.nat(20), fc.nat(0xffffffff), fc.oneof(fc.nat(200), fc.nat(0xffffffff)), fc.nat(0xffffffff), fc.oneof(fc.constant(0), fc.constant(0xffffffff), fc.nat(5), fc.nat(0xffffffff)), bytes(300))
  .map(([cmd, seq, devid, dir, ep, flags, len, start, npk, tail]) => {
    const h = new Uint8Array(48);
    const v = new DataView(h.buffer);
    [cmd, seq, devid, dir, ep, flags, len, start, npk].forEach((x, i) => v.setUint32(i * 4, x >>> 0));
    return new Uint8Array([...h, ...tail]);
  });

describe("USB/IP decoders never crash", () => {
  it("operation requests and replies", () => {
    fc.assert(fc.property(fc.oneof(bytes(), bytes(40).map((b) => new Uint8Array([0x01, 0x11, ...b]))), (input) => {
      drain(input, U.decodeOpRequest);
      drain(input, U.decodeOpRepDevlist);
      drain(input, U.decodeOpRepImport);
    }), RUNS);
  });

  it("URB commands and returns", () => {
    fc.assert(fc.property(fc.oneof(bytes(), urbLike), (input) => {
      drain(input, (q) => U.decodeCommand(q));
      drain(input, (q) => U.decodeReturn(q, (s) => s % 2 === 0));
    }), RUNS);
  });

  it("truncating a valid message never yields a message", () => {
    const whole = U.encodeCmdSubmit({ seqnum: 1, devid: 2, direction: 0, ep: 1, transferFlags: 0, transferBufferLength: 20, startFrame: 0, numberOfPackets: 0, interval: 0, setup: U.NO_SETUP, data: new Uint8Array(20) });
    fc.assert(fc.property(fc.nat(whole.length - 1), (cut) => {
      const q = new ByteQueue();
      q.push(whole.subarray(0, cut));
      expect(U.decodeCommand(q)).toBeUndefined();
    }));
  });
});

describe("CCID never crashes", () => {
  it("message framing", () => {
    fc.assert(fc.property(bytes(), (input) => {
      drain(input, (q) => C.takeCcid(q));
      try {
        C.decodeCcid(input);
      } catch (error) {
        expect(error).toBeInstanceOf(ChannelError);
      }
    }), RUNS);
  });

  it("the device model answers any bulk-OUT bytes with well-formed messages, and any control request", () => {
    const ccidLike = fc.tuple(fc.constantFrom(0x61, 0x62, 0x63, 0x65, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x72, 0x73, 0x00, 0xff), fc.nat(40), fc.nat(2), fc.nat(255), fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)), bytes(40))
      .map(([type, len, slot, seq, p, data]) => new Uint8Array([type, len, 0, 0, 0, slot, seq, ...p, ...data]));
    fc.assert(fc.property(fc.array(fc.oneof(bytes(80), ccidLike), { maxLength: 6 }), fc.array(fc.record({ bmRequestType: fc.nat(255), bRequest: fc.nat(255), wValue: fc.nat(0xffff), wIndex: fc.nat(0xffff), wLength: fc.nat(0xffff) }), { maxLength: 4 }), (chunks, setups) => {
      const device = new CcidUsbDevice(new TestCard());
      for (const s of setups) device.control(s);
      device.control({ bmRequestType: 0, bRequest: 9, wValue: 1, wIndex: 0, wLength: 0 });
      for (const chunk of chunks) device.bulkOut(chunk);
      const out: Uint8Array[] = [];
      for (let i = 0; i < 20; i++) device.submitIn(0x82, C.CCID_MAX_MESSAGE_BYTES, (d) => out.push(d));
      for (const message of out) expect(() => C.decodeCcid(message)).not.toThrow();
      device.reset();
    }), { numRuns: 200 });
  });
});

describe("serial and vpcd never crash", () => {
  it("the deframer takes any bytes, in any chunking", () => {
    fc.assert(fc.property(fc.array(bytes(120), { maxLength: 8 }), (chunks) => {
      const d = new F.SerialDeframer();
      let t = 0;
      for (const c of chunks) {
        const r = d.push(c, (t += 10));
        for (const f of r.frames) expect(f.payload.length).toBeLessThanOrEqual(F.SERIAL_MAX_PAYLOAD);
      }
      d.expire(t + 1000);
    }), RUNS);
  });

  it("a frame after noise is found (noise without SOF bytes)", () => {
    fc.assert(fc.property(bytes(200).map((b) => b.filter((x) => x !== F.SERIAL_SOF0)), bytes(300), fc.nat(255), (noise, payload, seq) => {
      const frame = F.encodeSerialFrame({ seq, type: F.TYPE_APDU, payload });
      const r = new F.SerialDeframer().push(new Uint8Array([...noise, ...frame]));
      expect(r.frames).toHaveLength(1);
      expect(r.frames[0]?.seq).toBe(seq);
      expect(r.dropped).toBe(noise.length);
    }), RUNS);
  });

  it("the serial card and the vpcd card answer any frame", () => {
    fc.assert(fc.property(fc.array(fc.record({ seq: fc.nat(255), type: fc.nat(255), payload: bytes(50) }), { maxLength: 8 }), (frames) => {
      const logic = new SerialCardLogic(new TestCard());
      const vpcd = new VpcdCard(new TestCard());
      for (const f of frames) {
        expect(logic.handle(f).seq).toBe(f.seq);
        vpcd.handle(f.payload);
      }
    }), RUNS);
  });

  it("parseTarget: a Target or BAD_TARGET, nothing else", () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.constantFrom("usbip://", "serial:", "usb:", "pcsc:", "sim:").chain((p) => fc.string().map((s) => p + s))), (uri) => {
      try {
        parseTarget(uri);
      } catch (error) {
        expect(error).toBeInstanceOf(ChannelError);
        expect((error as ChannelError).code).toBe("BAD_TARGET");
      }
    }), { numRuns: 1000 });
  });
});

describe("the USB/IP server survives hostile connections", () => {
  it("random bytes on many connections, then a normal client still works", async () => {
    const server = await serveUsbip(new TestCard(), { port: 0 });
    try {
      const samples = fc.sample(fc.oneof(bytes(200), urbLike, bytes(40).map((b) => new Uint8Array([0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0, ...b]))), { numRuns: 40, seed: 7 });
      await Promise.all(samples.map((sample) => new Promise<void>((resolve) => {
        const s = connect(server.port, server.host, () => {
          s.write(sample);
          setTimeout(() => s.destroy(), 30);
        });
        s.on("close", () => resolve());
        s.on("error", () => resolve());
      })));
      const channel = await CcidChannel.open(await importUsbipDevice(server.host, server.port, "1-1"), server.target, { timeoutMs: 1000 });
      expect((await channel.powerOn()).length).toBeGreaterThan(2);
      await channel.close();
    } finally {
      await server.close();
    }
  });
});
