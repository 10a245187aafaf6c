/**
 * serveUsbip: exports one simulated Ukey (a CCID reader with its card) as a USB/IP device,
 * speaking the Linux usbipd protocol, so `usbip list -r`, `usbip attach` on a host with
 * vhci-hcd, and our userspace USB/IP client all see a real USB device.
 *
 * One device, one busid. Any number of connections may list it; one at a time may import
 * it. When the importing connection ends the device is reset (the card loses power), as a
 * real token pulled from its port would.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { SimCard } from "../cos/index.ts";
import { ByteQueue } from "./bytes.ts";
import { ChannelError } from "./channel.ts";
import { CcidUsbDevice, type CcidDeviceOptions } from "./ccid-device.ts";
import * as U from "./usbip-codec.ts";
import * as D from "./usb-descriptors.ts";

export const USBIP_DEFAULT_BUSID = "1-1";
export const USBIP_BUSNUM = 1;
export const USBIP_DEVNUM = 2;
const SYSFS_PATH_PREFIX = "/sys/devices/platform/ukeysim/usb1/";
/** IN URBs a client may leave waiting at once; vhci-hcd keeps a handful. More is abuse. */
export const MAX_PARKED_URBS = 256;

export interface UsbipServeOptions {
  host?: string;
  /** 0 picks an ephemeral port; default 3240. */
  port?: number;
  busid?: string;
  device?: CcidDeviceOptions;
}

export interface ServerHandle {
  readonly host: string;
  readonly port: number;
  /** A target URI a host-side channel can open. */
  readonly target: string;
  close(): Promise<void>;
}

export function usbipDeviceRecord(busid: string): U.UsbipDevice {
  return {
    path: SYSFS_PATH_PREFIX + busid,
    busid,
    busnum: USBIP_BUSNUM,
    devnum: USBIP_DEVNUM,
    speed: U.USB_SPEED_FULL,
    idVendor: D.UKEY_VENDOR_ID,
    idProduct: D.UKEY_PRODUCT_ID,
    bcdDevice: D.UKEY_BCD_DEVICE,
    bDeviceClass: D.USB_CLASS_PER_INTERFACE,
    bDeviceSubClass: 0,
    bDeviceProtocol: 0,
    bConfigurationValue: D.UKEY_CONFIGURATION_VALUE,
    bNumConfigurations: 1,
    bNumInterfaces: 1,
    interfaces: [{ bInterfaceClass: D.USB_CLASS_CCID, bInterfaceSubClass: 0, bInterfaceProtocol: 0 }],
  };
}

export async function serveUsbip(card: SimCard, options: UsbipServeOptions = {}): Promise<ServerHandle> {
  const host = options.host ?? "127.0.0.1";
  const busid = options.busid ?? USBIP_DEFAULT_BUSID;
  const device = new CcidUsbDevice(card, options.device);
  const record = usbipDeviceRecord(busid);
  const sockets = new Set<Socket>();
  let importer: Socket | undefined;

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const connection = new UsbipConnection(socket, device, record, () => {
      if (importer && importer !== socket) return false;
      importer = socket;
      return true;
    });
    socket.on("close", () => {
      sockets.delete(socket);
      if (importer === socket) {
        importer = undefined;
        device.reset();
      }
      connection.closed();
    });
  });
  const port = await listen(server, host, options.port ?? U.USBIP_PORT_DEFAULT);
  return {
    host,
    port,
    target: `usbip://${host}:${port}/${busid}`,
    close: () => closeServer(server, sockets),
  };
}

export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => reject(new ChannelError("UNAVAILABLE", `cannot listen on ${host}:${port}: ${error.code ?? error.message}`)));
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

export function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

class UsbipConnection {
  private readonly queue = new ByteQueue();
  private imported = false;
  /** seqnum of a parked IN request -> the device's request id, for CMD_UNLINK. */
  private readonly parked = new Map<number, number>();
  private alive = true;

  constructor(
    private readonly socket: Socket,
    private readonly device: CcidUsbDevice,
    private readonly record: U.UsbipDevice,
    private readonly claim: () => boolean,
  ) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", () => socket.destroy());
  }

  closed(): void {
    this.alive = false;
    this.parked.clear();
  }

  private receive(chunk: Uint8Array): void {
    this.queue.push(chunk);
    try {
      while (this.alive && this.step()) {
        /* one message per step */
      }
    } catch {
      this.alive = false;
      this.socket.destroy(); // malformed or oversized: drop the connection, never the server
    }
  }

  private step(): boolean {
    if (!this.imported) {
      const request = U.decodeOpRequest(this.queue);
      if (!request) return false;
      this.operation(request);
      return true;
    }
    const command = U.decodeCommand(this.queue);
    if (!command) return false;
    if (command.command === U.USBIP_CMD_UNLINK) this.unlink(command);
    else this.submit(command);
    return true;
  }

  private operation(request: U.OpRequest): void {
    if (request.kind === "devlist") {
      this.socket.end(U.encodeOpRepDevlist([this.record]));
      this.alive = false;
      return;
    }
    if (request.busid !== this.record.busid || !this.claim()) {
      this.socket.end(U.encodeOpRepImport(undefined));
      this.alive = false;
      return;
    }
    this.imported = true;
    this.socket.write(U.encodeOpRepImport(this.record));
  }

  private submit(c: U.CmdSubmit): void {
    if (c.ep === 0) return this.control(c);
    const address = c.direction === U.USBIP_DIR_IN ? D.EP_DIR_IN | c.ep : c.ep;
    if (U.isIsoPacketCount(c.numberOfPackets) || !this.device.hasEndpoint(address) || !this.device.configured) return this.reply(c, -U.ERRNO_EPIPE);
    if (c.direction === U.USBIP_DIR_OUT) {
      this.device.bulkOut(c.data);
      return this.reply(c, 0, undefined, c.data.length);
    }
    if (this.parked.size >= MAX_PARKED_URBS) throw new Error(`more than ${MAX_PARKED_URBS} IN URBs waiting`);
    let done = false;
    const id = this.device.submitIn(address, c.transferBufferLength, (data) => {
      done = true;
      this.parked.delete(c.seqnum);
      this.reply(c, 0, data);
    });
    if (!done) this.parked.set(c.seqnum, id); // an answer already waiting completes at once
  }

  private control(c: U.CmdSubmit): void {
    const result = this.device.control(c.setup, c.data);
    if (result.stall) return this.reply(c, -U.ERRNO_EPIPE);
    if (c.direction === U.USBIP_DIR_IN) return this.reply(c, 0, result.data.subarray(0, c.transferBufferLength));
    this.reply(c, 0, undefined, c.data.length);
  }

  private unlink(c: U.CmdUnlink): void {
    const id = this.parked.get(c.unlinkSeqnum);
    const cancelled = id !== undefined && this.device.cancelIn(id);
    if (cancelled) this.parked.delete(c.unlinkSeqnum);
    this.write(U.encodeRetUnlink({ seqnum: c.seqnum, status: cancelled ? -U.ERRNO_ECONNRESET : 0 }));
  }

  /** number_of_packets is echoed from the command, as the Linux stub driver does (0 or 0xffffffff when not ISO). */
  private reply(c: U.CmdSubmit, status: number, data?: Uint8Array, outLength = 0): void {
    const payload = data ?? new Uint8Array(0);
    this.write(U.encodeRetSubmit({ seqnum: c.seqnum, status, actualLength: data ? data.length : outLength, startFrame: 0, numberOfPackets: U.isIsoPacketCount(c.numberOfPackets) ? 0 : c.numberOfPackets, errorCount: 0, data: payload }));
  }

  private write(bytes: Uint8Array): void {
    if (this.alive && !this.socket.destroyed) this.socket.write(bytes);
  }
}
