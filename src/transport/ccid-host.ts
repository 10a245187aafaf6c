/**
 * The CCID host driver: an ApduChannel over any UsbDeviceBackend (USB/IP client, libusb).
 * It reads the descriptors, finds the CCID interface, configures the device, and speaks
 * PC_to_RDR / RDR_to_PC at short or extended APDU level, following time extensions and
 * response chaining. Operations are serialised: CCID allows one command per slot.
 */
import { ChannelError, type ApduChannel } from "./channel.ts";
import { concatBytes } from "../tax/index.ts";
import * as C from "./ccid-codec.ts";
import * as D from "./usb-descriptors.ts";
import { getDescriptorSetup, REQUEST_TYPE_STANDARD_DEVICE_OUT, USB_REQ_SET_CONFIGURATION, type UsbDeviceBackend } from "./usb-device.ts";

export const CCID_DEFAULT_TIMEOUT_MS = 5000;
export const CONTROL_TIMEOUT_MS = 2000;
export const SHORT_APDU_MAX_BYTES = 261; // CLA INS P1 P2 Lc 255-data Le
/** A card may ask for more time, but not for ever: past this many extensions, TIMEOUT. */
export const MAX_TIME_EXTENSIONS = 1000;
const SEQ_MODULO = 256;

export interface CcidChannelOptions {
  /** How long one reader answer may take (a time extension restarts the wait). */
  timeoutMs?: number;
  /** How many time extensions one command may get before TIMEOUT. */
  maxTimeExtensions?: number;
}

export class CcidChannel implements ApduChannel {
  private seq = 0;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timeoutMs: number;
  private readonly maxTimeExtensions: number;
  private readonly maxMessage: number;
  private readonly level: number;

  private constructor(private readonly device: UsbDeviceBackend, readonly iface: D.CcidInterfaceInfo, readonly target: string, options: CcidChannelOptions) {
    this.timeoutMs = options.timeoutMs ?? CCID_DEFAULT_TIMEOUT_MS;
    this.maxTimeExtensions = options.maxTimeExtensions ?? MAX_TIME_EXTENSIONS;
    this.maxMessage = Math.min(iface.ccid.dwMaxCCIDMessageLength || C.CCID_MAX_MESSAGE_BYTES, C.CCID_MAX_MESSAGE_BYTES);
    this.level = iface.ccid.dwFeatures & D.CCID_FEATURE_LEVEL_MASK;
  }

  /** Enumerate the device (descriptors, SET_CONFIGURATION) and return a channel on its CCID interface. */
  static async open(device: UsbDeviceBackend, target: string, options: CcidChannelOptions = {}): Promise<CcidChannel> {
    D.parseDeviceDescriptor(await device.controlIn(getDescriptorSetup(D.USB_DT_DEVICE, 0, D.USB_DEVICE_DESCRIPTOR_BYTES), CONTROL_TIMEOUT_MS));
    const head = await device.controlIn(getDescriptorSetup(D.USB_DT_CONFIG, 0, D.USB_CONFIG_DESCRIPTOR_BYTES), CONTROL_TIMEOUT_MS);
    if (head.length < 4) throw new ChannelError("PROTOCOL", `${target}: short configuration descriptor`);
    const total = (head[2] as number) | ((head[3] as number) << 8);
    const config = await device.controlIn(getDescriptorSetup(D.USB_DT_CONFIG, 0, total), CONTROL_TIMEOUT_MS);
    const iface = D.findCcidInterface(config);
    const level = iface.ccid.dwFeatures & D.CCID_FEATURE_LEVEL_MASK;
    if (level !== D.CCID_FEATURE_LEVEL_SHORT_APDU && level !== D.CCID_FEATURE_LEVEL_EXTENDED_APDU) {
      throw new ChannelError("UNAVAILABLE", `${target}: reader works at TPDU or character level (dwFeatures 0x${iface.ccid.dwFeatures.toString(16)}); only APDU-level CCID is supported`);
    }
    await device.controlOut({ bmRequestType: REQUEST_TYPE_STANDARD_DEVICE_OUT, bRequest: USB_REQ_SET_CONFIGURATION, wValue: iface.configurationValue, wIndex: 0, wLength: 0 }, new Uint8Array(0), CONTROL_TIMEOUT_MS);
    await device.claimInterface(iface.interfaceNumber);
    return new CcidChannel(device, iface, target, options);
  }

  powerOn(): Promise<Uint8Array> {
    return this.serial(async () => {
      const reply = await this.command(C.iccPowerOn(this.nextSeq()));
      this.checkStatus(reply, "power on");
      if (reply.data.length === 0) throw new ChannelError("NO_CARD", `${this.target}: power on returned no ATR`);
      return reply.data;
    });
  }

  transmit(command: Uint8Array): Promise<Uint8Array> {
    return this.serial(async () => {
      if (this.level === D.CCID_FEATURE_LEVEL_SHORT_APDU && command.length > SHORT_APDU_MAX_BYTES) {
        throw new ChannelError("PROTOCOL", `${this.target}: extended APDU of ${command.length} bytes on a short-APDU reader`);
      }
      const parts = await this.sendCommandChain(command);
      return concatBytes(...parts);
    });
  }

  powerOff(): Promise<void> {
    return this.serial(async () => {
      const reply = await this.command(C.iccPowerOff(this.nextSeq()));
      if ((reply.param[0] & C.COMMAND_STATUS_MASK) === C.COMMAND_STATUS_FAILED) throw new ChannelError("PROTOCOL", `${this.target}: power off failed, bError 0x${reply.param[1].toString(16)}`);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue.catch(() => undefined);
    this.closed = true;
    await this.device.close();
  }

  /** A command APDU longer than one message goes in chained XfrBlocks; the answer may come chained too. */
  private async sendCommandChain(command: Uint8Array): Promise<Uint8Array[]> {
    const room = this.maxMessage - C.CCID_HEADER_BYTES;
    let reply: C.CcidMessage;
    if (command.length <= room) {
      reply = await this.command(C.xfrBlock(this.nextSeq(), command));
    } else {
      let at = 0;
      for (;;) {
        const piece = command.subarray(at, at + room);
        const level = at === 0 ? C.LEVEL_BEGIN_CONTINUES : at + room >= command.length ? C.LEVEL_CONTINUES_ENDS : C.LEVEL_CONTINUES;
        reply = await this.command(C.xfrBlock(this.nextSeq(), piece, level));
        this.checkStatus(reply, "transmit");
        at += piece.length;
        if (at >= command.length) break;
      }
    }
    this.checkStatus(reply, "transmit");
    const parts = [reply.data];
    while (reply.param[2] === C.LEVEL_BEGIN_CONTINUES || reply.param[2] === C.LEVEL_CONTINUES) {
      reply = await this.command(C.xfrBlock(this.nextSeq(), new Uint8Array(0), C.LEVEL_EMPTY_CONTINUE));
      this.checkStatus(reply, "transmit");
      parts.push(reply.data);
    }
    return parts;
  }

  private checkStatus(reply: C.CcidMessage, what: string): void {
    const status = reply.param[0];
    const error = reply.param[1];
    if ((status & C.COMMAND_STATUS_MASK) !== C.COMMAND_STATUS_FAILED) return;
    if (error === C.ERR_ICC_MUTE || (status & C.ICC_STATUS_MASK) === C.ICC_STATUS_ABSENT) {
      throw new ChannelError("NO_CARD", `${this.target}: ${what}: card ${(status & C.ICC_STATUS_MASK) === C.ICC_STATUS_ABSENT ? "absent" : "mute or unpowered"}`);
    }
    throw new ChannelError("PROTOCOL", `${this.target}: ${what} failed, bStatus 0x${status.toString(16)} bError 0x${error.toString(16)}`);
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1) % SEQ_MODULO;
    return s;
  }

  private serial<T>(body: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ChannelError("DISCONNECTED", `${this.target}: channel is closed`));
    const run = this.queue.then(body, body);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Send one PC_to_RDR message and wait for its RDR_to_PC answer, past time extensions and stale answers. */
  private async command(message: C.CcidMessage): Promise<C.CcidMessage> {
    await this.device.transferOut(this.iface.bulkOut, C.encodeCcid(message), this.timeoutMs);
    const expected = C.responseTypeFor(message.type);
    let extensions = 0;
    for (;;) {
      const reply = await this.readMessage();
      if (reply.seq !== message.seq) continue; // an answer to an earlier, timed-out command
      if ((reply.param[0] & C.COMMAND_STATUS_MASK) === C.COMMAND_STATUS_TIME_EXTENSION) {
        if (++extensions > this.maxTimeExtensions) throw new ChannelError("TIMEOUT", `${this.target}: the card asked for more than ${this.maxTimeExtensions} time extensions`);
        continue;
      }
      if (reply.type !== expected) throw new ChannelError("PROTOCOL", `${this.target}: expected message 0x${expected.toString(16)}, got 0x${reply.type.toString(16)}`);
      return reply;
    }
  }

  private async readMessage(): Promise<C.CcidMessage> {
    const parts: Uint8Array[] = [];
    let have = 0;
    let need = C.CCID_HEADER_BYTES;
    while (have < need) {
      const chunk = await this.device.transferIn(this.iface.bulkIn, this.maxMessage, this.timeoutMs);
      parts.push(chunk);
      have += chunk.length;
      if (parts.length === 1 || have >= C.CCID_HEADER_BYTES) {
        const head = parts.length === 1 ? chunk : concatBytes(...parts);
        const length = C.ccidDataLength(head);
        if (length !== undefined) {
          if (length > this.maxMessage - C.CCID_HEADER_BYTES) throw new ChannelError("PROTOCOL", `${this.target}: reader sent dwLength ${length}`);
          need = C.CCID_HEADER_BYTES + length;
        }
      }
    }
    const bytes = parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(...parts);
    if (bytes.length !== need) throw new ChannelError("PROTOCOL", `${this.target}: reader sent ${bytes.length - need} bytes past the message`);
    return C.decodeCcid(bytes);
  }
}
