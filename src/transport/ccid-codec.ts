/**
 * CCID messages (USB CCID class specification rev 1.1, sections 6.1-6.3): a 10-byte
 * header (bMessageType, dwLength little-endian, bSlot, bSeq, three message-specific bytes)
 * followed by dwLength bytes of abData. Bulk-OUT carries PC_to_RDR, bulk-IN RDR_to_PC,
 * interrupt-IN the RDR_to_PC_NotifySlotChange / HardwareError notifications.
 */
import { ByteQueue, protocolError, view } from "./bytes.ts";

export const CCID_HEADER_BYTES = 10;

// PC_to_RDR (6.1)
export const PC_TO_RDR_ICC_POWER_ON = 0x62;
export const PC_TO_RDR_ICC_POWER_OFF = 0x63;
export const PC_TO_RDR_GET_SLOT_STATUS = 0x65;
export const PC_TO_RDR_XFR_BLOCK = 0x6f;
export const PC_TO_RDR_GET_PARAMETERS = 0x6c;
export const PC_TO_RDR_RESET_PARAMETERS = 0x6d;
export const PC_TO_RDR_SET_PARAMETERS = 0x61;
export const PC_TO_RDR_ESCAPE = 0x6b;
export const PC_TO_RDR_ICC_CLOCK = 0x6e;
export const PC_TO_RDR_T0_APDU = 0x6a;
export const PC_TO_RDR_SECURE = 0x69;
export const PC_TO_RDR_MECHANICAL = 0x71;
export const PC_TO_RDR_ABORT = 0x72;
export const PC_TO_RDR_SET_DATA_RATE_AND_CLOCK = 0x73;

// RDR_to_PC (6.2)
export const RDR_TO_PC_DATA_BLOCK = 0x80;
export const RDR_TO_PC_SLOT_STATUS = 0x81;
export const RDR_TO_PC_PARAMETERS = 0x82;
export const RDR_TO_PC_ESCAPE = 0x83;
export const RDR_TO_PC_DATA_RATE_AND_CLOCK = 0x84;

// Interrupt-IN (6.3)
export const RDR_TO_PC_NOTIFY_SLOT_CHANGE = 0x50;
export const RDR_TO_PC_HARDWARE_ERROR = 0x51;
export const NOTIFY_SLOT_CHANGE_BYTES = 2; // one slot: 2 bits, rounded up to a byte
export const SLOT_ICC_PRESENT = 0x01;
export const SLOT_CHANGED = 0x02;

// bStatus (6.2.6): bmICCStatus in bits 0-1, bmCommandStatus in bits 6-7
export const ICC_STATUS_ACTIVE = 0x00;
export const ICC_STATUS_INACTIVE = 0x01;
export const ICC_STATUS_ABSENT = 0x02;
export const ICC_STATUS_MASK = 0x03;
export const COMMAND_STATUS_OK = 0x00;
export const COMMAND_STATUS_FAILED = 0x40;
export const COMMAND_STATUS_TIME_EXTENSION = 0x80;
export const COMMAND_STATUS_MASK = 0xc0;

// bError (6.2.6, table 6.2-2); positive small values are the offset of the bad field
export const ERR_CMD_ABORTED = 0xff;
export const ERR_ICC_MUTE = 0xfe;
export const ERR_XFR_PARITY_ERROR = 0xfd;
export const ERR_XFR_OVERRUN = 0xfc;
export const ERR_HW_ERROR = 0xfb;
export const ERR_BAD_ATR_TS = 0xf8;
export const ERR_BAD_ATR_TCK = 0xf7;
export const ERR_ICC_PROTOCOL_NOT_SUPPORTED = 0xf6;
export const ERR_ICC_CLASS_NOT_SUPPORTED = 0xf5;
export const ERR_PROCEDURE_BYTE_CONFLICT = 0xf4;
export const ERR_DEACTIVATED_PROTOCOL = 0xf3;
export const ERR_BUSY_WITH_AUTO_SEQUENCE = 0xf2;
export const ERR_CMD_SLOT_BUSY = 0xe0;
export const ERR_CMD_NOT_SUPPORTED = 0x00;
export const ERR_OFFSET_DW_LENGTH = 1;
export const ERR_OFFSET_B_SLOT = 5;
export const ERR_OFFSET_PARAM1 = 7;
export const ERR_OFFSET_PARAM2 = 8;

// wLevelParameter of XfrBlock at extended APDU level, and bChainParameter of DataBlock (6.1.4)
export const LEVEL_BEGIN_AND_END = 0x0000;
export const LEVEL_BEGIN_CONTINUES = 0x0001;
export const LEVEL_CONTINUES_ENDS = 0x0002;
export const LEVEL_CONTINUES = 0x0003;
export const LEVEL_EMPTY_CONTINUE = 0x0010;

// bProtocolNum and protocol data structures (6.1.7)
export const PROTOCOL_T0 = 0x00;
export const PROTOCOL_T1 = 0x01;
export const T0_PARAMETER_BYTES = 5;
export const T1_PARAMETER_BYTES = 7;

/** The largest message this codec accepts: a full extended APDU (65544 B) plus header. */
export const CCID_MAX_DATA_BYTES = 65544;
export const CCID_MAX_MESSAGE_BYTES = CCID_HEADER_BYTES + CCID_MAX_DATA_BYTES;

export interface CcidMessage {
  type: number;
  slot: number;
  seq: number;
  /** The three message-specific header bytes (offsets 7, 8, 9). */
  param: [number, number, number];
  data: Uint8Array;
}

export function encodeCcid(m: CcidMessage): Uint8Array {
  if (m.data.length > CCID_MAX_DATA_BYTES) throw new RangeError(`CCID data of ${m.data.length} bytes exceeds ${CCID_MAX_DATA_BYTES}`);
  const out = new Uint8Array(CCID_HEADER_BYTES + m.data.length);
  out[0] = m.type;
  view(out).setUint32(1, m.data.length, true);
  out[5] = m.slot;
  out[6] = m.seq & 0xff;
  out[7] = m.param[0];
  out[8] = m.param[1];
  out[9] = m.param[2];
  out.set(m.data, CCID_HEADER_BYTES);
  return out;
}

/** dwLength of a header, or undefined when fewer than 10 bytes are there. */
export function ccidDataLength(header: Uint8Array): number | undefined {
  if (header.length < CCID_HEADER_BYTES) return undefined;
  return view(header).getUint32(1, true);
}

/** Decode one complete message; throws on a short, long or oversized one. */
export function decodeCcid(bytes: Uint8Array, maxData = CCID_MAX_DATA_BYTES): CcidMessage {
  const length = ccidDataLength(bytes);
  if (length === undefined) throw protocolError(`CCID message of ${bytes.length} bytes is shorter than its 10-byte header`);
  if (length > maxData) throw protocolError(`CCID dwLength ${length} exceeds ${maxData}`);
  if (bytes.length !== CCID_HEADER_BYTES + length) throw protocolError(`CCID dwLength ${length} but ${bytes.length - CCID_HEADER_BYTES} data bytes`);
  return {
    type: bytes[0] as number,
    slot: bytes[5] as number,
    seq: bytes[6] as number,
    param: [bytes[7] as number, bytes[8] as number, bytes[9] as number],
    data: bytes.slice(CCID_HEADER_BYTES),
  };
}

/** Take one message from a stream of bulk bytes; undefined while incomplete. */
export function takeCcid(queue: ByteQueue, maxData = CCID_MAX_DATA_BYTES): CcidMessage | undefined {
  if (queue.length < CCID_HEADER_BYTES) return undefined;
  const length = ccidDataLength(queue.peek(CCID_HEADER_BYTES)) as number;
  if (length > maxData) throw protocolError(`CCID dwLength ${length} exceeds ${maxData}`);
  if (queue.length < CCID_HEADER_BYTES + length) return undefined;
  return decodeCcid(queue.take(CCID_HEADER_BYTES + length), maxData);
}

// ---------------------------------------------------------------- typed builders

const RFU: [number, number, number] = [0, 0, 0];
const NO_DATA = new Uint8Array(0);

export function iccPowerOn(seq: number, powerSelect = 0, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_ICC_POWER_ON, slot, seq, param: [powerSelect, 0, 0], data: NO_DATA };
}
export function iccPowerOff(seq: number, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_ICC_POWER_OFF, slot, seq, param: RFU, data: NO_DATA };
}
export function getSlotStatus(seq: number, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_GET_SLOT_STATUS, slot, seq, param: RFU, data: NO_DATA };
}
export function xfrBlock(seq: number, data: Uint8Array, levelParameter = LEVEL_BEGIN_AND_END, bwi = 0, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_XFR_BLOCK, slot, seq, param: [bwi, levelParameter & 0xff, levelParameter >> 8], data };
}
export function getParameters(seq: number, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_GET_PARAMETERS, slot, seq, param: RFU, data: NO_DATA };
}
export function resetParameters(seq: number, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_RESET_PARAMETERS, slot, seq, param: RFU, data: NO_DATA };
}
export function setParameters(seq: number, protocol: number, data: Uint8Array, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_SET_PARAMETERS, slot, seq, param: [protocol, 0, 0], data };
}
export function escape(seq: number, data: Uint8Array, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_ESCAPE, slot, seq, param: RFU, data };
}
export function abort(seq: number, slot = 0): CcidMessage {
  return { type: PC_TO_RDR_ABORT, slot, seq, param: RFU, data: NO_DATA };
}

export function dataBlock(seq: number, status: number, error: number, data: Uint8Array = NO_DATA, chain = 0, slot = 0): CcidMessage {
  return { type: RDR_TO_PC_DATA_BLOCK, slot, seq, param: [status, error, chain], data };
}
export function slotStatus(seq: number, status: number, error: number, clockStatus = 0, slot = 0): CcidMessage {
  return { type: RDR_TO_PC_SLOT_STATUS, slot, seq, param: [status, error, clockStatus], data: NO_DATA };
}
export function parameters(seq: number, status: number, error: number, protocol: number, data: Uint8Array, slot = 0): CcidMessage {
  return { type: RDR_TO_PC_PARAMETERS, slot, seq, param: [status, error, protocol], data };
}
export function escapeResponse(seq: number, status: number, error: number, data: Uint8Array = NO_DATA, slot = 0): CcidMessage {
  return { type: RDR_TO_PC_ESCAPE, slot, seq, param: [status, error, 0], data };
}
export function dataRateAndClock(seq: number, status: number, error: number, data: Uint8Array = NO_DATA, slot = 0): CcidMessage {
  return { type: RDR_TO_PC_DATA_RATE_AND_CLOCK, slot, seq, param: [status, error, 0], data };
}

/** RDR_to_PC_NotifySlotChange for one slot. */
export function encodeNotifySlotChange(present: boolean, changed: boolean): Uint8Array {
  return Uint8Array.of(RDR_TO_PC_NOTIFY_SLOT_CHANGE, (present ? SLOT_ICC_PRESENT : 0) | (changed ? SLOT_CHANGED : 0));
}

export function decodeNotifySlotChange(bytes: Uint8Array): { present: boolean; changed: boolean } {
  if (bytes.length < NOTIFY_SLOT_CHANGE_BYTES || bytes[0] !== RDR_TO_PC_NOTIFY_SLOT_CHANGE) throw protocolError(`not a NotifySlotChange: ${bytes.length} bytes`);
  const bits = bytes[1] as number;
  return { present: (bits & SLOT_ICC_PRESENT) !== 0, changed: (bits & SLOT_CHANGED) !== 0 };
}

/** The response type a reader sends for each command type (6.1, table 6.1-1). */
export function responseTypeFor(commandType: number): number {
  switch (commandType) {
    case PC_TO_RDR_ICC_POWER_ON:
    case PC_TO_RDR_XFR_BLOCK:
    case PC_TO_RDR_SECURE:
      return RDR_TO_PC_DATA_BLOCK;
    case PC_TO_RDR_GET_PARAMETERS:
    case PC_TO_RDR_RESET_PARAMETERS:
    case PC_TO_RDR_SET_PARAMETERS:
      return RDR_TO_PC_PARAMETERS;
    case PC_TO_RDR_ESCAPE:
      return RDR_TO_PC_ESCAPE;
    case PC_TO_RDR_SET_DATA_RATE_AND_CLOCK:
      return RDR_TO_PC_DATA_RATE_AND_CLOCK;
    default:
      return RDR_TO_PC_SLOT_STATUS;
  }
}
