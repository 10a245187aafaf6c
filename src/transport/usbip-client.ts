/**
 * A userspace USB/IP client: imports a remote device over TCP and offers it as a
 * UsbDeviceBackend, so the whole USB path (descriptors, CCID, URBs) is exercised here
 * without vhci-hcd. It is also what `usbip://HOST:PORT/BUSID` targets open.
 */
import type { Socket } from "node:net";
import { ByteQueue } from "./bytes.ts";
import { ChannelError } from "./channel.ts";
import { connectTcp } from "./net-util.ts";
import type { UsbDeviceBackend } from "./usb-device.ts";
import * as U from "./usbip-codec.ts";

export const USBIP_REPLY_TIMEOUT_MS = 3000;
const EP_NUMBER_MASK = 0x0f;
const EP_DIR_IN = 0x80;

/** Ask a USB/IP server for its exported devices (what `usbip list -r HOST` does). */
export async function listUsbipDevices(host: string, port = U.USBIP_PORT_DEFAULT, timeoutMs = USBIP_REPLY_TIMEOUT_MS): Promise<U.UsbipDevice[]> {
  const socket = await connectTcp(host, port, timeoutMs);
  try {
    socket.write(U.encodeOpReqDevlist());
    return await readReply(socket, timeoutMs, U.decodeOpRepDevlist);
  } finally {
    socket.destroy();
  }
}

/** Import `busid` and return it as a USB device. */
export async function importUsbipDevice(host: string, port: number, busid: string, timeoutMs = USBIP_REPLY_TIMEOUT_MS): Promise<UsbipClientDevice> {
  const socket = await connectTcp(host, port, timeoutMs);
  try {
    socket.write(U.encodeOpReqImport(busid));
    const queue = new ByteQueue();
    const reply = await readReply(socket, timeoutMs, U.decodeOpRepImport, queue);
    if (!reply.device) throw new ChannelError("NO_CARD", `USB/IP server ${host}:${port} refused to export ${busid} (unknown busid, or already attached)`);
    return new UsbipClientDevice(socket, reply.device, `usbip://${host}:${port}/${busid}`, queue);
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

function readReply<T>(socket: Socket, timeoutMs: number, decode: (q: ByteQueue) => T | undefined, queue = new ByteQueue()): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | undefined, value?: T) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(value as T);
    };
    const onData = (chunk: Buffer) => {
      queue.push(chunk);
      try {
        const value = decode(queue);
        if (value !== undefined) done(undefined, value);
      } catch (error) {
        done(error as Error);
      }
    };
    const onClose = () => done(new ChannelError("DISCONNECTED", "USB/IP server closed the connection before replying"));
    const timer = setTimeout(() => done(new ChannelError("TIMEOUT", `no USB/IP reply within ${timeoutMs} ms`)), timeoutMs);
    socket.on("data", onData);
    socket.on("close", onClose);
  });
}

interface InFlight {
  isIn: boolean;
  resolve: (r: U.RetSubmit) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  unlinking: boolean;
}

export class UsbipClientDevice implements UsbDeviceBackend {
  private readonly queue: ByteQueue;
  private readonly inFlight = new Map<number, InFlight>();
  /** seqnum of a CMD_UNLINK -> seqnum it cancels. */
  private readonly unlinks = new Map<number, number>();
  private nextSeqnum = 1;
  private failure: ChannelError | undefined;
  private readonly devid: number;

  constructor(private readonly socket: Socket, readonly device: U.UsbipDevice, readonly description: string, queue = new ByteQueue()) {
    this.queue = queue;
    this.devid = ((device.busnum & 0xffff) << 16) | (device.devnum & 0xffff);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.fail(new ChannelError("DISCONNECTED", `${description}: USB/IP connection closed`)));
    if (queue.length) this.receive(new Uint8Array(0));
  }

  controlIn(setup: U.UsbSetup, timeoutMs: number): Promise<Uint8Array> {
    return this.submit(U.USBIP_DIR_IN, 0, setup, setup.wLength, new Uint8Array(0), timeoutMs).then((r) => r.data);
  }

  async controlOut(setup: U.UsbSetup, data: Uint8Array, timeoutMs: number): Promise<void> {
    await this.submit(U.USBIP_DIR_OUT, 0, setup, data.length, data, timeoutMs);
  }

  async transferOut(endpoint: number, data: Uint8Array, timeoutMs: number): Promise<void> {
    await this.submit(U.USBIP_DIR_OUT, endpoint & EP_NUMBER_MASK, U.NO_SETUP, data.length, data, timeoutMs);
  }

  async transferIn(endpoint: number, length: number, timeoutMs: number): Promise<Uint8Array> {
    if (!(endpoint & EP_DIR_IN)) throw new RangeError(`endpoint 0x${endpoint.toString(16)} is not an IN endpoint`);
    const r = await this.submit(U.USBIP_DIR_IN, endpoint & EP_NUMBER_MASK, U.NO_SETUP, length, new Uint8Array(0), timeoutMs);
    return r.data;
  }

  async claimInterface(): Promise<void> {
    /* a USB/IP import gives us the whole device */
  }

  async close(): Promise<void> {
    this.fail(new ChannelError("DISCONNECTED", `${this.description}: closed`));
    this.socket.destroy();
  }

  private submit(direction: number, ep: number, setup: U.UsbSetup, length: number, data: Uint8Array, timeoutMs: number): Promise<U.RetSubmit> {
    if (this.failure) return Promise.reject(this.failure);
    const seqnum = this.takeSeqnum();
    const bytes = U.encodeCmdSubmit({ seqnum, devid: this.devid, direction, ep, transferFlags: 0, transferBufferLength: length, startFrame: 0, numberOfPackets: 0, interval: 0, setup, data });
    return new Promise<U.RetSubmit>((resolve, reject) => {
      const entry: InFlight = { isIn: direction === U.USBIP_DIR_IN, resolve, reject, timer: undefined, unlinking: false };
      entry.timer = setTimeout(() => this.timeOut(seqnum, entry, timeoutMs), timeoutMs);
      this.inFlight.set(seqnum, entry);
      this.socket.write(bytes);
    }).then((r) => {
      if (r.status === -U.ERRNO_EPIPE) throw new ChannelError("PROTOCOL", `${this.description}: endpoint ${ep} stalled`);
      if (r.status !== 0) throw new ChannelError("PROTOCOL", `${this.description}: URB failed with errno ${-r.status}`);
      return r;
    });
  }

  private takeSeqnum(): number {
    const s = this.nextSeqnum;
    this.nextSeqnum = this.nextSeqnum >= 0xffffffff ? 1 : this.nextSeqnum + 1;
    return s;
  }

  /** Cancel a late URB with CMD_UNLINK; its RET_SUBMIT (if the server already sent one) is dropped. */
  private timeOut(seqnum: number, entry: InFlight, timeoutMs: number): void {
    entry.unlinking = true;
    entry.timer = undefined;
    entry.reject(new ChannelError("TIMEOUT", `${this.description}: no answer within ${timeoutMs} ms`));
    if (this.failure) return;
    const unlinkSeqnum = this.takeSeqnum();
    this.unlinks.set(unlinkSeqnum, seqnum);
    this.socket.write(U.encodeCmdUnlink({ seqnum: unlinkSeqnum, devid: this.devid, direction: 0, ep: 0, unlinkSeqnum: seqnum }));
  }

  private receive(chunk: Uint8Array): void {
    this.queue.push(chunk);
    try {
      for (;;) {
        const message = U.decodeReturn(this.queue, (s) => this.inFlight.get(s)?.isIn ?? false);
        if (!message) return;
        this.dispatch(message);
      }
    } catch (error) {
      this.fail(error as ChannelError);
      this.socket.destroy();
    }
  }

  private dispatch(message: U.RetSubmit | U.RetUnlink): void {
    if (message.command === U.USBIP_RET_UNLINK) {
      const target = this.unlinks.get(message.seqnum);
      this.unlinks.delete(message.seqnum);
      if (target !== undefined) this.inFlight.delete(target);
      return;
    }
    const entry = this.inFlight.get(message.seqnum);
    if (!entry) throw new ChannelError("PROTOCOL", `${this.description}: RET_SUBMIT for unknown seqnum ${message.seqnum}`);
    this.inFlight.delete(message.seqnum);
    if (entry.unlinking) return;
    clearTimeout(entry.timer);
    entry.resolve(message);
  }

  private fail(error: ChannelError): void {
    if (this.failure) return;
    this.failure = error;
    for (const entry of this.inFlight.values()) {
      clearTimeout(entry.timer);
      if (!entry.unlinking) entry.reject(error);
    }
    this.inFlight.clear();
  }
}
