/**
 * The vpcd card side against a scripted vpcd (no system tools): framing, control
 * messages, mute as an empty answer, reinsertion after vpcd drops us.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ByteQueue } from "../../src/transport/bytes.ts";
import { encodeVpcdFrame, serveVpcd, takeVpcdFrame, VpcdCard, VPCD_CTRL_ATR, VPCD_CTRL_OFF, VPCD_CTRL_ON, VPCD_CTRL_RESET, type VpcdHandle } from "../../src/transport/vpcd.ts";
import { INS_ECHO, INS_MUTE, TEST_AID, TestCard, bytesOf, hexOf, testAtr } from "./support/test-card.ts";
import { apdu } from "./support/scenario.ts";

/** Plays pcscd's vpcd: listens, accepts the card, sends frames and reads answers. */
class FakeVpcd {
  private server: Server;
  private sockets: Socket[] = [];
  private queue = new ByteQueue();
  private waiting: ((s: Socket) => void)[] = [];
  private frames: Uint8Array[] = [];
  private frameWaiters: ((f: Uint8Array) => void)[] = [];
  port = 0;
  constructor() {
    this.server = createServer((s) => {
      this.sockets.push(s);
      this.queue = new ByteQueue();
      s.on("data", (d: Buffer) => {
        this.queue.push(d);
        for (let f = takeVpcdFrame(this.queue); f; f = takeVpcdFrame(this.queue)) {
          const w = this.frameWaiters.shift();
          if (w) w(f);
          else this.frames.push(f);
        }
      });
      for (const w of this.waiting.splice(0)) w(s);
    });
  }
  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(0, "127.0.0.1", () => {
      this.port = (this.server.address() as { port: number }).port;
      r();
    }));
  }
  current(): Promise<Socket> {
    const live = this.sockets.find((s) => !s.destroyed);
    return live ? Promise.resolve(live) : new Promise((r) => this.waiting.push(r));
  }
  async send(payload: Uint8Array): Promise<void> {
    (await this.current()).write(encodeVpcdFrame(payload));
  }
  next(): Promise<Uint8Array> {
    const f = this.frames.shift();
    return f ? Promise.resolve(f) : new Promise((r) => this.frameWaiters.push(r));
  }
  async exchange(payload: Uint8Array): Promise<Uint8Array> {
    await this.send(payload);
    return this.next();
  }
  dropCard(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets = [];
  }
  close(): Promise<void> {
    this.dropCard();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function setup(card = new TestCard()): Promise<{ vpcd: FakeVpcd; handle: VpcdHandle; card: TestCard }> {
  const vpcd = new FakeVpcd();
  await vpcd.listen();
  const handle = await serveVpcd(card, { port: vpcd.port, reconnectDelayMs: 20 });
  cleanups.push(() => vpcd.close(), () => handle.close());
  await handle.connected();
  return { vpcd, handle, card };
}

describe("vpcd framing", () => {
  it("encodes a 2-byte big-endian length and the payload", () => {
    expect(hexOf(encodeVpcdFrame(bytesOf("9000")))).toBe("00029000");
    expect(hexOf(encodeVpcdFrame(Uint8Array.of(VPCD_CTRL_ATR)))).toBe("000104");
    expect(() => encodeVpcdFrame(new Uint8Array(0x10000))).toThrow(RangeError);
    const q = new ByteQueue();
    q.push(bytesOf("000301"));
    expect(takeVpcdFrame(q)).toBeUndefined();
    q.push(bytesOf("0203 0000"));
    expect(hexOf(takeVpcdFrame(q) as Uint8Array)).toBe("010203");
    expect(hexOf(takeVpcdFrame(q) as Uint8Array)).toBe("");
  });

  it("VpcdCard: ATR before power-on, no answer to power control, APDUs only when powered", () => {
    const card = new TestCard();
    const v = new VpcdCard(card);
    expect(hexOf(v.handle(Uint8Array.of(VPCD_CTRL_ATR)) as Uint8Array)).toBe(hexOf(testAtr()));
    expect(card.powered).toBe(false);
    expect(v.handle(apdu(0, 0xa4, 4, 0, TEST_AID))).toBeNull();
    expect(v.handle(Uint8Array.of(VPCD_CTRL_ON))).toBeUndefined();
    expect(hexOf(v.handle(apdu(0, 0xa4, 4, 0, TEST_AID)) as Uint8Array)).toBe("9000");
    expect(v.handle(Uint8Array.of(VPCD_CTRL_RESET))).toBeUndefined();
    expect(card.powerOns).toBe(3);
    expect(v.handle(Uint8Array.of(VPCD_CTRL_OFF))).toBeUndefined();
    expect(card.powered).toBe(false);
    expect(v.handle(Uint8Array.of(0x77))).toBeUndefined();
  });
});

describe("vpcd card side over TCP (scripted vpcd)", () => {
  it("answers get-ATR and APDUs after power-on", async () => {
    const { vpcd } = await setup();
    expect(hexOf(await vpcd.exchange(Uint8Array.of(VPCD_CTRL_ATR)))).toBe(hexOf(testAtr()));
    await vpcd.send(Uint8Array.of(VPCD_CTRL_ON));
    expect(hexOf(await vpcd.exchange(apdu(0, 0xa4, 4, 0, TEST_AID)))).toBe("9000");
    const big = new Uint8Array(4000).fill(0x5a);
    const answer = await vpcd.exchange(apdu(0x80, INS_ECHO, 0, 0, big, 65535));
    expect(answer.length).toBe(4002);
  });

  it("a mute card closes the connection (a removal) and comes back (a reinsertion)", async () => {
    const { vpcd, card } = await setup();
    await vpcd.send(Uint8Array.of(VPCD_CTRL_ON));
    const first = await vpcd.current();
    const closed = new Promise((r) => first.once("close", r));
    await vpcd.send(Uint8Array.of(0x80, INS_MUTE, 0, 0));
    await closed;
    const second = await new Promise((r) => setTimeout(r, 80)).then(() => vpcd.current());
    expect(second).not.toBe(first);
    expect(card.powered).toBe(false);
    await vpcd.send(Uint8Array.of(VPCD_CTRL_ON));
    expect(hexOf(await vpcd.exchange(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(9))))).toBe("099000");
  });

  it("frames split across TCP segments and several frames in one segment", async () => {
    const { vpcd } = await setup();
    const socket = await vpcd.current();
    const bytes = new Uint8Array([...encodeVpcdFrame(Uint8Array.of(VPCD_CTRL_ON)), ...encodeVpcdFrame(apdu(0x80, INS_ECHO, 0, 0, Uint8Array.of(1, 2)))]);
    socket.write(bytes.subarray(0, 4));
    await new Promise((r) => setTimeout(r, 20));
    socket.write(bytes.subarray(4));
    expect(hexOf(await vpcd.next())).toBe("01029000");
  });

  it("keeps retrying while vpcd is not there, and stops on close", async () => {
    const vpcd = new FakeVpcd();
    await vpcd.listen();
    const port = vpcd.port;
    await vpcd.close();
    const handle = await serveVpcd(new TestCard(), { port, reconnectDelayMs: 20 });
    await new Promise((r) => setTimeout(r, 100));
    await handle.close();
  });
});
