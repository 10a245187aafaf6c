/**
 * The device side of the USB path: a full-speed CCID reader with one SimCard in its only
 * slot, modelled at the USB transfer level (control requests on endpoint 0, CCID messages
 * on bulk-OUT/bulk-IN, slot-change notifications on interrupt-IN). The USB/IP server (and
 * any other USB device emulation) drives it; it knows nothing about sockets.
 *
 * IN transfers are requests that wait: `submitIn` parks a request until the device has
 * something to send on that endpoint, `cancelIn` withdraws it (USB/IP CMD_UNLINK).
 */
import { CardMuteError, type SimCard } from "../cos/index.ts";
import { NULL_TRACE, toHex, type TraceSink } from "../sim/index.ts";
import { ByteQueue } from "./bytes.ts";
import { concatBytes } from "../tax/index.ts";
import * as C from "./ccid-codec.ts";
import type { UsbSetup } from "./usbip-codec.ts";
import * as D from "./usb-descriptors.ts";

// Standard requests (USB 2.0 table 9-4) and request-type bits (9.3)
export const REQ_GET_STATUS = 0x00;
export const REQ_CLEAR_FEATURE = 0x01;
export const REQ_SET_FEATURE = 0x03;
export const REQ_SET_ADDRESS = 0x05;
export const REQ_GET_DESCRIPTOR = 0x06;
export const REQ_GET_CONFIGURATION = 0x08;
export const REQ_SET_CONFIGURATION = 0x09;
export const REQ_GET_INTERFACE = 0x0a;
export const REQ_SET_INTERFACE = 0x0b;
// CCID class requests (CCID 5.3)
export const CCID_REQ_ABORT = 0x01;
export const CCID_REQ_GET_CLOCK_FREQUENCIES = 0x02;
export const CCID_REQ_GET_DATA_RATES = 0x03;

export const REQTYPE_DIR_IN = 0x80;
export const REQTYPE_TYPE_MASK = 0x60;
export const REQTYPE_STANDARD = 0x00;
export const REQTYPE_CLASS = 0x20;
export const REQTYPE_RECIPIENT_MASK = 0x1f;
export const RECIPIENT_DEVICE = 0x00;
export const RECIPIENT_INTERFACE = 0x01;
export const RECIPIENT_ENDPOINT = 0x02;

/** How often a slow card's pending answer is covered by a time-extension DataBlock. */
export const TIME_EXTENSION_INTERVAL_MS = 200;
/** bError of a time extension: the BWT multiplier asked for. */
export const TIME_EXTENSION_MULTIPLIER = 1;

/**
 * Answers the host has not collected yet. A real reader handles one command at a time and
 * NAKs bulk-OUT until its answer is read; past this many we drop new commands instead.
 */
export const MAX_UNREAD_ANSWERS = 16;

/** T=1 protocol data structure (CCID 6.1.7): Fi/Di 0x11, TCCKS 0x10, guard 0, BWI 4 CWI 13, IFSC 254. */
export const DEFAULT_T1_PARAMETERS = Uint8Array.of(0x11, 0x10, 0x00, 0x4d, 0x00, 0xfe, 0x00);

export interface CcidDeviceOptions {
  trace?: TraceSink;
  /** Simulated card processing time for one APDU (ms); above the interval the reader sends time extensions. */
  cardLatencyMs?: (apdu: Uint8Array) => number;
  timeExtensionIntervalMs?: number;
  maxMessageLength?: number;
  manufacturer?: string;
  product?: string;
  serial?: string;
}

export type ControlResult = { stall: false; data: Uint8Array } | { stall: true };

interface PendingIn {
  id: number;
  length: number;
  complete: (data: Uint8Array) => void;
}

interface Endpoint {
  messages: Uint8Array[];
  pending: PendingIn[];
}

const STALL: ControlResult = { stall: true };
const EMPTY = new Uint8Array(0);

function ok(data: Uint8Array = EMPTY, wLength = data.length): ControlResult {
  return { stall: false, data: data.subarray(0, Math.min(data.length, wLength)) };
}

export class CcidUsbDevice {
  readonly maxMessageLength: number;
  private readonly trace: TraceSink;
  private readonly strings: (string | undefined)[];
  private readonly bulkOutBytes = new ByteQueue();
  private readonly endpoints = new Map<number, Endpoint>([
    [D.UKEY_BULK_IN_EP, { messages: [], pending: [] }],
    [D.UKEY_INTERRUPT_IN_EP, { messages: [], pending: [] }],
  ]);
  private configuration = 0;
  /** Commands ignored because the host did not read the answers (see MAX_UNREAD_ANSWERS). */
  droppedCommands = 0;
  private powered = false;
  private nextRequestId = 1;
  private traceSeq = 0;
  private busy: { seq: number; timers: NodeJS.Timeout[] } | undefined;
  private chained: Uint8Array[] = [];
  private parameters: { protocol: number; data: Uint8Array } = { protocol: C.PROTOCOL_T1, data: DEFAULT_T1_PARAMETERS };

  constructor(private readonly card: SimCard, private readonly options: CcidDeviceOptions = {}) {
    this.trace = options.trace ?? NULL_TRACE;
    this.maxMessageLength = options.maxMessageLength ?? C.CCID_MAX_MESSAGE_BYTES;
    this.strings = [undefined, options.manufacturer ?? "ukeysim", options.product ?? "ukeysim tax-control Ukey (CCID)", options.serial ?? "UKEYSIM0001"];
  }

  deviceDescriptor(): Uint8Array {
    return D.deviceDescriptor();
  }

  configurationDescriptor(): Uint8Array {
    return D.configurationDescriptor(this.maxMessageLength);
  }

  get configured(): boolean {
    return this.configuration !== 0;
  }

  // ------------------------------------------------------------ endpoint 0

  control(setup: UsbSetup, dataOut: Uint8Array = EMPTY): ControlResult {
    const type = setup.bmRequestType & REQTYPE_TYPE_MASK;
    if (type === REQTYPE_STANDARD) return this.standardRequest(setup);
    if (type === REQTYPE_CLASS && (setup.bmRequestType & REQTYPE_RECIPIENT_MASK) === RECIPIENT_INTERFACE) return this.classRequest(setup, dataOut);
    return STALL;
  }

  private standardRequest(s: UsbSetup): ControlResult {
    const dirIn = (s.bmRequestType & REQTYPE_DIR_IN) !== 0;
    switch (s.bRequest) {
      case REQ_GET_DESCRIPTOR:
        return dirIn ? this.getDescriptor(s) : STALL;
      case REQ_GET_STATUS:
        return dirIn ? ok(new Uint8Array(2), s.wLength) : STALL;
      case REQ_SET_CONFIGURATION:
        return this.setConfiguration(s.wValue & 0xff);
      case REQ_GET_CONFIGURATION:
        return dirIn ? ok(Uint8Array.of(this.configuration), s.wLength) : STALL;
      case REQ_SET_INTERFACE:
        return s.wIndex === D.UKEY_INTERFACE_NUMBER && s.wValue === 0 ? ok() : STALL;
      case REQ_GET_INTERFACE:
        return dirIn && s.wIndex === D.UKEY_INTERFACE_NUMBER ? ok(Uint8Array.of(0), s.wLength) : STALL;
      case REQ_SET_ADDRESS:
      case REQ_CLEAR_FEATURE:
      case REQ_SET_FEATURE:
        return dirIn ? STALL : ok();
      default:
        return STALL;
    }
  }

  private getDescriptor(s: UsbSetup): ControlResult {
    const type = s.wValue >> 8;
    const index = s.wValue & 0xff;
    if (type === D.USB_DT_DEVICE) return ok(this.deviceDescriptor(), s.wLength);
    if (type === D.USB_DT_CONFIG && index === 0) return ok(this.configurationDescriptor(), s.wLength);
    if (type === D.USB_DT_STRING && index < this.strings.length) return ok(D.stringDescriptor(this.strings[index]), s.wLength);
    return STALL; // includes DEVICE_QUALIFIER: a full-speed-only device must stall it
  }

  private setConfiguration(value: number): ControlResult {
    if (value !== 0 && value !== D.UKEY_CONFIGURATION_VALUE) return STALL;
    const wasConfigured = this.configured;
    this.configuration = value;
    if (value && !wasConfigured) this.notify(encodeSlotChange(true, true));
    return ok();
  }

  private classRequest(s: UsbSetup, _dataOut: Uint8Array): ControlResult {
    const dirIn = (s.bmRequestType & REQTYPE_DIR_IN) !== 0;
    switch (s.bRequest) {
      case CCID_REQ_ABORT:
        return dirIn ? STALL : ok(); // the PC_to_RDR_Abort that follows does the work
      case CCID_REQ_GET_CLOCK_FREQUENCIES:
        return dirIn ? ok(u32le(D.CCID_DEFAULT_CLOCK_KHZ), s.wLength) : STALL;
      case CCID_REQ_GET_DATA_RATES:
        return dirIn ? ok(u32le(D.CCID_DEFAULT_DATA_RATE_BPS), s.wLength) : STALL;
      default:
        return STALL;
    }
  }

  // ------------------------------------------------------------ bulk and interrupt

  /** Bytes of one bulk-OUT transfer; a CCID message may span several. */
  bulkOut(data: Uint8Array): void {
    this.bulkOutBytes.push(data);
    for (;;) {
      let message: C.CcidMessage | undefined;
      try {
        message = C.takeCcid(this.bulkOutBytes, this.maxMessageLength - C.CCID_HEADER_BYTES);
      } catch {
        this.rejectOversized();
        return;
      }
      if (!message) return;
      this.handle(message);
    }
  }

  private rejectOversized(): void {
    const header = this.bulkOutBytes.peek(C.CCID_HEADER_BYTES);
    const reply = C.slotStatus(header[6] as number, C.COMMAND_STATUS_FAILED | this.iccStatus(), C.ERR_OFFSET_DW_LENGTH);
    reply.type = C.responseTypeFor(header[0] as number);
    this.bulkOutBytes.clear();
    this.send(reply);
  }

  /** Park an IN request on `endpoint`; `complete` runs when data is ready. Returns an id for cancelIn. */
  submitIn(endpoint: number, length: number, complete: (data: Uint8Array) => void): number {
    const ep = this.endpoints.get(endpoint);
    const id = this.nextRequestId++;
    if (!ep) {
      queueMicrotask(() => complete(EMPTY));
      return id;
    }
    ep.pending.push({ id, length, complete });
    this.pump(ep);
    return id;
  }

  /** Withdraw a parked IN request; false when it already completed (or never existed). */
  cancelIn(id: number): boolean {
    for (const ep of this.endpoints.values()) {
      const i = ep.pending.findIndex((p) => p.id === id);
      if (i >= 0) {
        ep.pending.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  hasEndpoint(address: number): boolean {
    return address === D.UKEY_BULK_OUT_EP || this.endpoints.has(address);
  }

  /** The host went away (USB reset, disconnect): the card loses power and queues empty. */
  reset(): void {
    this.cancelBusy();
    if (this.powered) this.card.powerOff();
    this.powered = false;
    this.configuration = 0;
    this.chained = [];
    this.bulkOutBytes.clear();
    for (const ep of this.endpoints.values()) {
      ep.messages = [];
      ep.pending = [];
    }
  }

  private pump(ep: Endpoint): void {
    while (ep.pending.length && ep.messages.length) {
      const request = ep.pending.shift() as PendingIn;
      const message = ep.messages[0] as Uint8Array;
      if (message.length <= request.length) {
        ep.messages.shift();
        request.complete(message);
      } else {
        ep.messages[0] = message.subarray(request.length);
        request.complete(message.subarray(0, request.length));
      }
    }
  }

  private send(message: C.CcidMessage): void {
    this.enqueue(D.UKEY_BULK_IN_EP, C.encodeCcid(message));
  }

  private notify(bytes: Uint8Array): void {
    this.enqueue(D.UKEY_INTERRUPT_IN_EP, bytes);
  }

  private enqueue(endpoint: number, bytes: Uint8Array): void {
    const ep = this.endpoints.get(endpoint) as Endpoint;
    ep.messages.push(bytes);
    this.pump(ep);
  }

  // ------------------------------------------------------------ CCID commands

  private iccStatus(): number {
    return this.powered ? C.ICC_STATUS_ACTIVE : C.ICC_STATUS_INACTIVE;
  }

  private fail(m: C.CcidMessage, error: number, icc = this.iccStatus()): void {
    this.send({ type: C.responseTypeFor(m.type), slot: m.slot, seq: m.seq, param: [C.COMMAND_STATUS_FAILED | icc, error, 0], data: EMPTY });
  }

  private handle(m: C.CcidMessage): void {
    if ((this.endpoints.get(D.UKEY_BULK_IN_EP) as Endpoint).messages.length >= MAX_UNREAD_ANSWERS) {
      this.droppedCommands++;
      return;
    }
    if (m.slot !== 0) return this.fail(m, C.ERR_OFFSET_B_SLOT, C.ICC_STATUS_ABSENT);
    if (m.type === C.PC_TO_RDR_ABORT) return this.abort(m);
    if (this.busy) return this.fail(m, C.ERR_CMD_SLOT_BUSY);
    switch (m.type) {
      case C.PC_TO_RDR_ICC_POWER_ON:
        return this.powerOn(m);
      case C.PC_TO_RDR_ICC_POWER_OFF:
        return this.powerOff(m);
      case C.PC_TO_RDR_GET_SLOT_STATUS:
        return this.send(C.slotStatus(m.seq, this.iccStatus(), 0));
      case C.PC_TO_RDR_XFR_BLOCK:
        return this.xfrBlock(m);
      case C.PC_TO_RDR_GET_PARAMETERS:
        return this.sendParameters(m);
      case C.PC_TO_RDR_RESET_PARAMETERS:
        this.parameters = { protocol: C.PROTOCOL_T1, data: DEFAULT_T1_PARAMETERS };
        return this.sendParameters(m);
      case C.PC_TO_RDR_SET_PARAMETERS:
        return this.setParameters(m);
      default:
        return this.fail(m, C.ERR_CMD_NOT_SUPPORTED); // Escape, IccClock, T0APDU, Secure, Mechanical, SetDataRate, unknown
    }
  }

  private powerOn(m: C.CcidMessage): void {
    if (m.param[0] > 3) return this.fail(m, C.ERR_OFFSET_PARAM1);
    this.chained = [];
    const atr = this.card.powerOn();
    this.powered = true;
    this.trace.emit({ kind: "power", seq: this.traceSeq++, state: "on", atr: toHex(atr) });
    this.send(C.dataBlock(m.seq, C.ICC_STATUS_ACTIVE, 0, atr));
  }

  private powerOff(m: C.CcidMessage): void {
    if (this.powered) {
      this.card.powerOff();
      this.trace.emit({ kind: "power", seq: this.traceSeq++, state: "off" });
    }
    this.powered = false;
    this.chained = [];
    this.send(C.slotStatus(m.seq, C.ICC_STATUS_INACTIVE, 0));
  }

  private sendParameters(m: C.CcidMessage): void {
    this.send(C.parameters(m.seq, this.iccStatus(), 0, this.parameters.protocol, this.parameters.data));
  }

  private setParameters(m: C.CcidMessage): void {
    const protocol = m.param[0];
    const expected = protocol === C.PROTOCOL_T0 ? C.T0_PARAMETER_BYTES : protocol === C.PROTOCOL_T1 ? C.T1_PARAMETER_BYTES : -1;
    if (expected < 0) return this.fail(m, C.ERR_OFFSET_PARAM1);
    if (m.data.length !== expected) return this.fail(m, C.ERR_OFFSET_DW_LENGTH);
    this.parameters = { protocol, data: m.data };
    this.sendParameters(m);
  }

  private xfrBlock(m: C.CcidMessage): void {
    if (!this.powered) return this.send(C.dataBlock(m.seq, C.COMMAND_STATUS_FAILED | C.ICC_STATUS_INACTIVE, C.ERR_ICC_MUTE));
    const level = m.param[1] | (m.param[2] << 8);
    if (level === C.LEVEL_BEGIN_CONTINUES || level === C.LEVEL_CONTINUES) {
      if (level === C.LEVEL_BEGIN_CONTINUES) this.chained = [];
      this.chained.push(m.data);
      return this.send(C.dataBlock(m.seq, C.ICC_STATUS_ACTIVE, 0, EMPTY, C.LEVEL_EMPTY_CONTINUE));
    }
    if (level !== C.LEVEL_BEGIN_AND_END && level !== C.LEVEL_CONTINUES_ENDS) return this.fail(m, C.ERR_OFFSET_PARAM2);
    const apdu = level === C.LEVEL_CONTINUES_ENDS ? concatBytes(...this.chained, m.data) : m.data;
    this.chained = [];
    this.exchange(m.seq, apdu);
  }

  private exchange(seq: number, apdu: Uint8Array): void {
    let reply: C.CcidMessage;
    try {
      const response = this.card.process(apdu);
      this.trace.emit({ kind: "apdu", seq: this.traceSeq++, command: toHex(apdu), response: toHex(response) });
      reply = C.dataBlock(seq, C.ICC_STATUS_ACTIVE, 0, response);
    } catch (error) {
      this.powered = false;
      const mute = error instanceof CardMuteError;
      this.trace.emit({ kind: "apdu", seq: this.traceSeq++, command: toHex(apdu), response: "" });
      reply = C.dataBlock(seq, C.COMMAND_STATUS_FAILED | C.ICC_STATUS_INACTIVE, mute ? C.ERR_ICC_MUTE : C.ERR_HW_ERROR);
    }
    const latency = this.options.cardLatencyMs?.(apdu) ?? 0;
    if (latency <= 0) return this.send(reply);
    this.answerLater(seq, reply, latency);
  }

  /** A slow card: cover the wait with time extensions, then answer. */
  private answerLater(seq: number, reply: C.CcidMessage, latency: number): void {
    const interval = this.options.timeExtensionIntervalMs ?? TIME_EXTENSION_INTERVAL_MS;
    const busy = { seq, timers: [] as NodeJS.Timeout[] };
    this.busy = busy;
    for (let t = interval; t < latency; t += interval) {
      busy.timers.push(setTimeout(() => this.send(C.dataBlock(seq, C.COMMAND_STATUS_TIME_EXTENSION | C.ICC_STATUS_ACTIVE, TIME_EXTENSION_MULTIPLIER)), t));
    }
    busy.timers.push(setTimeout(() => {
      this.cancelBusy();
      this.send(reply);
    }, latency));
  }

  private cancelBusy(): void {
    for (const t of this.busy?.timers ?? []) clearTimeout(t);
    this.busy = undefined;
  }

  private abort(m: C.CcidMessage): void {
    if (this.busy) {
      const seq = this.busy.seq;
      this.cancelBusy();
      this.send(C.dataBlock(seq, C.COMMAND_STATUS_FAILED | this.iccStatus(), C.ERR_CMD_ABORTED));
    }
    this.send(C.slotStatus(m.seq, this.iccStatus(), 0));
  }
}

function u32le(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, true);
  return out;
}

function encodeSlotChange(present: boolean, changed: boolean): Uint8Array {
  return C.encodeNotifySlotChange(present, changed);
}
