/**
 * USB/IP wire format (Linux Documentation/usb/usbip_protocol.rst, protocol version 1.1.1).
 * Operation headers and URB headers are big-endian; the 8-byte setup packet inside
 * USBIP_CMD_SUBMIT is little-endian, as on the USB wire.
 *
 * Decoders take a ByteQueue: they return undefined while a message is incomplete (nothing
 * consumed), consume and return it when complete, and throw ChannelError PROTOCOL when it
 * is malformed or larger than the limits below.
 */
import { ByteQueue, protocolError, readFixedString, view, writeFixedString } from "./bytes.ts";

export const USBIP_VERSION = 0x0111;
export const USBIP_PORT_DEFAULT = 3240;

export const OP_REQ_DEVLIST = 0x8005;
export const OP_REP_DEVLIST = 0x0005;
export const OP_REQ_IMPORT = 0x8003;
export const OP_REP_IMPORT = 0x0003;
export const OP_STATUS_OK = 0;
export const OP_STATUS_ERROR = 1;

export const USBIP_CMD_SUBMIT = 0x00000001;
export const USBIP_CMD_UNLINK = 0x00000002;
export const USBIP_RET_SUBMIT = 0x00000003;
export const USBIP_RET_UNLINK = 0x00000004;

export const USBIP_DIR_OUT = 0;
export const USBIP_DIR_IN = 1;

export const OP_HEADER_BYTES = 8;
export const PATH_BYTES = 256;
export const BUSID_BYTES = 32;
/** One exported device in OP_REP_DEVLIST / OP_REP_IMPORT, without its interface entries. */
export const DEVICE_RECORD_BYTES = 0x138;
export const INTERFACE_RECORD_BYTES = 4;
export const DEVLIST_COUNT_BYTES = 4;
export const URB_HEADER_BYTES = 48;
export const SETUP_BYTES = 8;
export const ISO_DESCRIPTOR_BYTES = 16;
/** number_of_packets for a transfer that is not isochronous. */
export const NON_ISO_PACKETS = 0xffffffff;

/** Limits that keep a hostile peer from making us allocate or wait without bound. */
export const MAX_TRANSFER_BYTES = 1 << 20;
export const MAX_ISO_PACKETS = 1024;
export const MAX_DEVLIST_DEVICES = 256;
export const MAX_INTERFACES = 32;

/** Linux errno values carried (negated) in RET_SUBMIT / RET_UNLINK status. */
export const ERRNO_ENOENT = 2;
export const ERRNO_EPIPE = 32;
export const ERRNO_ECONNRESET = 104;
export const ERRNO_ESHUTDOWN = 108;

export const USB_SPEED_FULL = 2;

export interface UsbipInterface {
  bInterfaceClass: number;
  bInterfaceSubClass: number;
  bInterfaceProtocol: number;
}

export interface UsbipDevice {
  path: string;
  busid: string;
  busnum: number;
  devnum: number;
  speed: number;
  idVendor: number;
  idProduct: number;
  bcdDevice: number;
  bDeviceClass: number;
  bDeviceSubClass: number;
  bDeviceProtocol: number;
  bConfigurationValue: number;
  bNumConfigurations: number;
  bNumInterfaces: number;
  /** Listed in OP_REP_DEVLIST only; OP_REP_IMPORT carries none. */
  interfaces: UsbipInterface[];
}

export type OpRequest = { kind: "devlist" } | { kind: "import"; busid: string };

export interface UsbSetup {
  bmRequestType: number;
  bRequest: number;
  wValue: number;
  wIndex: number;
  wLength: number;
}

export interface IsoPacket {
  offset: number;
  length: number;
  actualLength: number;
  status: number;
}

export interface CmdSubmit {
  command: typeof USBIP_CMD_SUBMIT;
  seqnum: number;
  devid: number;
  direction: number;
  ep: number;
  transferFlags: number;
  transferBufferLength: number;
  startFrame: number;
  numberOfPackets: number;
  interval: number;
  setup: UsbSetup;
  /** The OUT payload (empty for IN). */
  data: Uint8Array;
  iso: IsoPacket[];
}

export interface CmdUnlink {
  command: typeof USBIP_CMD_UNLINK;
  seqnum: number;
  devid: number;
  direction: number;
  ep: number;
  unlinkSeqnum: number;
}

export interface RetSubmit {
  command: typeof USBIP_RET_SUBMIT;
  seqnum: number;
  status: number;
  actualLength: number;
  startFrame: number;
  numberOfPackets: number;
  errorCount: number;
  /** The IN payload (empty for OUT). */
  data: Uint8Array;
}

export interface RetUnlink {
  command: typeof USBIP_RET_UNLINK;
  seqnum: number;
  status: number;
}

// ---------------------------------------------------------------- operations

function opHeader(code: number, status: number): Uint8Array {
  const out = new Uint8Array(OP_HEADER_BYTES);
  const v = view(out);
  v.setUint16(0, USBIP_VERSION);
  v.setUint16(2, code);
  v.setUint32(4, status);
  return out;
}

export function encodeOpReqDevlist(): Uint8Array {
  return opHeader(OP_REQ_DEVLIST, 0);
}

export function encodeOpReqImport(busid: string): Uint8Array {
  const out = new Uint8Array(OP_HEADER_BYTES + BUSID_BYTES);
  out.set(opHeader(OP_REQ_IMPORT, 0));
  writeFixedString(out, OP_HEADER_BYTES, BUSID_BYTES, busid);
  return out;
}

function writeDeviceRecord(out: Uint8Array, at: number, d: UsbipDevice): void {
  writeFixedString(out, at, PATH_BYTES, d.path);
  writeFixedString(out, at + PATH_BYTES, BUSID_BYTES, d.busid);
  const v = view(out);
  let o = at + PATH_BYTES + BUSID_BYTES;
  v.setUint32(o, d.busnum); o += 4;
  v.setUint32(o, d.devnum); o += 4;
  v.setUint32(o, d.speed); o += 4;
  v.setUint16(o, d.idVendor); o += 2;
  v.setUint16(o, d.idProduct); o += 2;
  v.setUint16(o, d.bcdDevice); o += 2;
  out[o++] = d.bDeviceClass;
  out[o++] = d.bDeviceSubClass;
  out[o++] = d.bDeviceProtocol;
  out[o++] = d.bConfigurationValue;
  out[o++] = d.bNumConfigurations;
  out[o++] = d.bNumInterfaces;
}

function readDeviceRecord(bytes: Uint8Array, at: number): UsbipDevice {
  const v = view(bytes);
  let o = at + PATH_BYTES + BUSID_BYTES;
  const busnum = v.getUint32(o); o += 4;
  const devnum = v.getUint32(o); o += 4;
  const speed = v.getUint32(o); o += 4;
  const idVendor = v.getUint16(o); o += 2;
  const idProduct = v.getUint16(o); o += 2;
  const bcdDevice = v.getUint16(o); o += 2;
  return {
    path: readFixedString(bytes, at, PATH_BYTES),
    busid: readFixedString(bytes, at + PATH_BYTES, BUSID_BYTES),
    busnum, devnum, speed, idVendor, idProduct, bcdDevice,
    bDeviceClass: bytes[o] as number,
    bDeviceSubClass: bytes[o + 1] as number,
    bDeviceProtocol: bytes[o + 2] as number,
    bConfigurationValue: bytes[o + 3] as number,
    bNumConfigurations: bytes[o + 4] as number,
    bNumInterfaces: bytes[o + 5] as number,
    interfaces: [],
  };
}

export function encodeOpRepDevlist(devices: readonly UsbipDevice[]): Uint8Array {
  let size = OP_HEADER_BYTES + DEVLIST_COUNT_BYTES;
  for (const d of devices) size += DEVICE_RECORD_BYTES + d.interfaces.length * INTERFACE_RECORD_BYTES;
  const out = new Uint8Array(size);
  out.set(opHeader(OP_REP_DEVLIST, OP_STATUS_OK));
  view(out).setUint32(OP_HEADER_BYTES, devices.length);
  let at = OP_HEADER_BYTES + DEVLIST_COUNT_BYTES;
  for (const d of devices) {
    if (d.interfaces.length !== d.bNumInterfaces) throw new RangeError(`device ${d.busid}: bNumInterfaces ${d.bNumInterfaces} but ${d.interfaces.length} interfaces`);
    writeDeviceRecord(out, at, d);
    at += DEVICE_RECORD_BYTES;
    for (const i of d.interfaces) {
      out[at] = i.bInterfaceClass;
      out[at + 1] = i.bInterfaceSubClass;
      out[at + 2] = i.bInterfaceProtocol;
      at += INTERFACE_RECORD_BYTES; // the fourth byte is padding, zero
    }
  }
  return out;
}

export function encodeOpRepImport(device: UsbipDevice | undefined): Uint8Array {
  if (!device) return opHeader(OP_REP_IMPORT, OP_STATUS_ERROR);
  const out = new Uint8Array(OP_HEADER_BYTES + DEVICE_RECORD_BYTES);
  out.set(opHeader(OP_REP_IMPORT, OP_STATUS_OK));
  writeDeviceRecord(out, OP_HEADER_BYTES, device);
  return out;
}

function checkVersion(queue: ByteQueue): void {
  const version = (queue.at(0) << 8) | queue.at(1);
  if (version !== USBIP_VERSION) throw protocolError(`USB/IP version 0x${version.toString(16)} is not 0x0111`);
}

/** Server side: the first message of a connection. */
export function decodeOpRequest(queue: ByteQueue): OpRequest | undefined {
  if (queue.length < OP_HEADER_BYTES) return undefined;
  checkVersion(queue);
  const code = (queue.at(2) << 8) | queue.at(3);
  if (code === OP_REQ_DEVLIST) {
    queue.skip(OP_HEADER_BYTES);
    return { kind: "devlist" };
  }
  if (code === OP_REQ_IMPORT) {
    if (queue.length < OP_HEADER_BYTES + BUSID_BYTES) return undefined;
    const bytes = queue.take(OP_HEADER_BYTES + BUSID_BYTES);
    return { kind: "import", busid: readFixedString(bytes, OP_HEADER_BYTES, BUSID_BYTES) };
  }
  throw protocolError(`unknown USB/IP operation 0x${code.toString(16)}`);
}

function opReplyStatus(queue: ByteQueue, expected: number): number {
  checkVersion(queue);
  const code = (queue.at(2) << 8) | queue.at(3);
  if (code !== expected) throw protocolError(`expected USB/IP reply 0x${expected.toString(16)}, got 0x${code.toString(16)}`);
  return view(queue.peek(OP_HEADER_BYTES)).getUint32(4);
}

/** Client side: the answer to OP_REQ_DEVLIST. */
export function decodeOpRepDevlist(queue: ByteQueue): UsbipDevice[] | undefined {
  if (queue.length < OP_HEADER_BYTES + DEVLIST_COUNT_BYTES) return undefined;
  const status = opReplyStatus(queue, OP_REP_DEVLIST);
  if (status !== OP_STATUS_OK) throw protocolError(`OP_REP_DEVLIST status ${status}`);
  const count = view(queue.peek(OP_HEADER_BYTES + DEVLIST_COUNT_BYTES)).getUint32(OP_HEADER_BYTES);
  if (count > MAX_DEVLIST_DEVICES) throw protocolError(`OP_REP_DEVLIST lists ${count} devices (max ${MAX_DEVLIST_DEVICES})`);
  let at = OP_HEADER_BYTES + DEVLIST_COUNT_BYTES;
  const devices: UsbipDevice[] = [];
  for (let i = 0; i < count; i++) {
    if (queue.length < at + DEVICE_RECORD_BYTES) return undefined;
    const device = readDeviceRecord(queue.peek(at + DEVICE_RECORD_BYTES), at);
    if (device.bNumInterfaces > MAX_INTERFACES) throw protocolError(`device ${device.busid} has ${device.bNumInterfaces} interfaces`);
    at += DEVICE_RECORD_BYTES;
    const end = at + device.bNumInterfaces * INTERFACE_RECORD_BYTES;
    if (queue.length < end) return undefined;
    for (; at < end; at += INTERFACE_RECORD_BYTES) {
      device.interfaces.push({ bInterfaceClass: queue.at(at), bInterfaceSubClass: queue.at(at + 1), bInterfaceProtocol: queue.at(at + 2) });
    }
    devices.push(device);
  }
  queue.skip(at);
  return devices;
}

/** Client side: the answer to OP_REQ_IMPORT; `device` is undefined when the server refused. */
export function decodeOpRepImport(queue: ByteQueue): { device: UsbipDevice | undefined } | undefined {
  if (queue.length < OP_HEADER_BYTES) return undefined;
  const status = opReplyStatus(queue, OP_REP_IMPORT);
  if (status !== OP_STATUS_OK) {
    queue.skip(OP_HEADER_BYTES);
    return { device: undefined };
  }
  if (queue.length < OP_HEADER_BYTES + DEVICE_RECORD_BYTES) return undefined;
  const bytes = queue.take(OP_HEADER_BYTES + DEVICE_RECORD_BYTES);
  return { device: readDeviceRecord(bytes, OP_HEADER_BYTES) };
}

// ---------------------------------------------------------------- URBs

export function encodeSetup(s: UsbSetup): Uint8Array {
  const out = new Uint8Array(SETUP_BYTES);
  const v = view(out);
  out[0] = s.bmRequestType;
  out[1] = s.bRequest;
  v.setUint16(2, s.wValue, true);
  v.setUint16(4, s.wIndex, true);
  v.setUint16(6, s.wLength, true);
  return out;
}

export function decodeSetup(bytes: Uint8Array): UsbSetup {
  const v = view(bytes);
  return { bmRequestType: bytes[0] as number, bRequest: bytes[1] as number, wValue: v.getUint16(2, true), wIndex: v.getUint16(4, true), wLength: v.getUint16(6, true) };
}

const NO_SETUP: UsbSetup = { bmRequestType: 0, bRequest: 0, wValue: 0, wIndex: 0, wLength: 0 };

function urbHeader(command: number, seqnum: number, devid: number, direction: number, ep: number): Uint8Array {
  const out = new Uint8Array(URB_HEADER_BYTES);
  const v = view(out);
  v.setUint32(0, command);
  v.setUint32(4, seqnum);
  v.setUint32(8, devid);
  v.setUint32(12, direction);
  v.setUint32(16, ep);
  return out;
}

export function isIsoPacketCount(n: number): boolean {
  return n !== NON_ISO_PACKETS && n !== 0;
}

export function encodeCmdSubmit(c: Omit<CmdSubmit, "command" | "iso"> & { iso?: IsoPacket[] }): Uint8Array {
  const iso = c.iso ?? [];
  const payload = c.direction === USBIP_DIR_OUT ? c.data.length : 0;
  const out = new Uint8Array(URB_HEADER_BYTES + payload + iso.length * ISO_DESCRIPTOR_BYTES);
  out.set(urbHeader(USBIP_CMD_SUBMIT, c.seqnum, c.devid, c.direction, c.ep));
  const v = view(out);
  v.setUint32(20, c.transferFlags);
  v.setUint32(24, c.transferBufferLength);
  v.setUint32(28, c.startFrame);
  v.setUint32(32, c.numberOfPackets);
  v.setUint32(36, c.interval);
  out.set(encodeSetup(c.setup), 40);
  if (payload) out.set(c.data, URB_HEADER_BYTES);
  writeIso(out, URB_HEADER_BYTES + payload, iso);
  return out;
}

export function encodeCmdUnlink(c: Omit<CmdUnlink, "command">): Uint8Array {
  const out = urbHeader(USBIP_CMD_UNLINK, c.seqnum, c.devid, c.direction, c.ep);
  view(out).setUint32(20, c.unlinkSeqnum);
  return out;
}

export function encodeRetSubmit(r: Omit<RetSubmit, "command">): Uint8Array {
  const out = new Uint8Array(URB_HEADER_BYTES + r.data.length);
  out.set(urbHeader(USBIP_RET_SUBMIT, r.seqnum, 0, 0, 0));
  const v = view(out);
  v.setInt32(20, r.status);
  v.setUint32(24, r.actualLength);
  v.setUint32(28, r.startFrame);
  v.setUint32(32, r.numberOfPackets);
  v.setUint32(36, r.errorCount);
  out.set(r.data, URB_HEADER_BYTES);
  return out;
}

export function encodeRetUnlink(r: Omit<RetUnlink, "command">): Uint8Array {
  const out = urbHeader(USBIP_RET_UNLINK, r.seqnum, 0, 0, 0);
  view(out).setInt32(20, r.status);
  return out;
}

function writeIso(out: Uint8Array, at: number, iso: readonly IsoPacket[]): void {
  const v = view(out);
  for (const p of iso) {
    v.setUint32(at, p.offset);
    v.setUint32(at + 4, p.length);
    v.setUint32(at + 8, p.actualLength);
    v.setInt32(at + 12, p.status);
    at += ISO_DESCRIPTOR_BYTES;
  }
}

function readIso(bytes: Uint8Array, at: number, count: number): IsoPacket[] {
  const v = view(bytes);
  const out: IsoPacket[] = [];
  for (let i = 0; i < count; i++, at += ISO_DESCRIPTOR_BYTES) {
    out.push({ offset: v.getUint32(at), length: v.getUint32(at + 4), actualLength: v.getUint32(at + 8), status: v.getInt32(at + 12) });
  }
  return out;
}

function checkLength(what: string, n: number, max: number): void {
  if (n > max) throw protocolError(`${what} ${n} exceeds the limit ${max}`);
}

/** Server side: the next CMD_SUBMIT or CMD_UNLINK of an imported device. */
export function decodeCommand(queue: ByteQueue, maxTransfer = MAX_TRANSFER_BYTES): CmdSubmit | CmdUnlink | undefined {
  if (queue.length < URB_HEADER_BYTES) return undefined;
  const header = queue.peek(URB_HEADER_BYTES);
  const v = view(header);
  const command = v.getUint32(0);
  const seqnum = v.getUint32(4), devid = v.getUint32(8), direction = v.getUint32(12), ep = v.getUint32(16);
  if (command === USBIP_CMD_UNLINK) {
    queue.skip(URB_HEADER_BYTES);
    return { command, seqnum, devid, direction, ep, unlinkSeqnum: v.getUint32(20) };
  }
  if (command !== USBIP_CMD_SUBMIT) throw protocolError(`unknown USB/IP command 0x${command.toString(16)}`);
  if (direction !== USBIP_DIR_OUT && direction !== USBIP_DIR_IN) throw protocolError(`bad USB/IP direction ${direction}`);
  if (ep > 15) throw protocolError(`bad USB/IP endpoint ${ep}`);
  const transferBufferLength = v.getUint32(24);
  const numberOfPackets = v.getUint32(32);
  checkLength("transfer_buffer_length", transferBufferLength, maxTransfer);
  const isoCount = isIsoPacketCount(numberOfPackets) ? numberOfPackets : 0;
  checkLength("number_of_packets", isoCount, MAX_ISO_PACKETS);
  const payload = direction === USBIP_DIR_OUT ? transferBufferLength : 0;
  const total = URB_HEADER_BYTES + payload + isoCount * ISO_DESCRIPTOR_BYTES;
  if (queue.length < total) return undefined;
  const bytes = queue.take(total);
  return {
    command, seqnum, devid, direction, ep,
    transferFlags: v.getUint32(20),
    transferBufferLength,
    startFrame: view(bytes).getUint32(28),
    numberOfPackets,
    interval: view(bytes).getUint32(36),
    setup: decodeSetup(bytes.subarray(40, 48)),
    data: bytes.subarray(URB_HEADER_BYTES, URB_HEADER_BYTES + payload),
    iso: readIso(bytes, URB_HEADER_BYTES + payload, isoCount),
  };
}

/**
 * Client side: the next RET_SUBMIT or RET_UNLINK. A RET_SUBMIT carries data only for an IN
 * transfer, which the header does not say, so the caller tells: `isIn(seqnum)`.
 */
export function decodeReturn(queue: ByteQueue, isIn: (seqnum: number) => boolean, maxTransfer = MAX_TRANSFER_BYTES): RetSubmit | RetUnlink | undefined {
  if (queue.length < URB_HEADER_BYTES) return undefined;
  const v = view(queue.peek(URB_HEADER_BYTES));
  const command = v.getUint32(0);
  const seqnum = v.getUint32(4);
  if (command === USBIP_RET_UNLINK) {
    queue.skip(URB_HEADER_BYTES);
    return { command, seqnum, status: v.getInt32(20) };
  }
  if (command !== USBIP_RET_SUBMIT) throw protocolError(`unknown USB/IP return 0x${command.toString(16)}`);
  const actualLength = v.getUint32(24);
  const numberOfPackets = v.getUint32(32);
  checkLength("actual_length", actualLength, maxTransfer);
  const isoCount = isIsoPacketCount(numberOfPackets) ? numberOfPackets : 0;
  checkLength("number_of_packets", isoCount, MAX_ISO_PACKETS);
  const payload = isIn(seqnum) ? actualLength : 0;
  const total = URB_HEADER_BYTES + payload + isoCount * ISO_DESCRIPTOR_BYTES;
  if (queue.length < total) return undefined;
  const status = v.getInt32(20), startFrame = v.getUint32(28), errorCount = v.getUint32(36);
  const bytes = queue.take(total);
  return { command, seqnum, status, actualLength, startFrame, numberOfPackets, errorCount, data: bytes.subarray(URB_HEADER_BYTES, URB_HEADER_BYTES + payload) };
}

export { NO_SETUP };
