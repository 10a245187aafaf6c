/**
 * USB 2.0 descriptors (USB 2.0 spec chapter 9) of the simulated Ukey, a full-speed CCID
 * smart-card reader with its card built in, and the parser the host driver uses to find a
 * CCID interface on any device (ours or a real token).
 */
import { protocolError, view } from "./bytes.ts";

export const USB_DT_DEVICE = 0x01;
export const USB_DT_CONFIG = 0x02;
export const USB_DT_STRING = 0x03;
export const USB_DT_INTERFACE = 0x04;
export const USB_DT_ENDPOINT = 0x05;
export const USB_DT_DEVICE_QUALIFIER = 0x06;
export const USB_DT_CCID = 0x21;

export const USB_DEVICE_DESCRIPTOR_BYTES = 18;
export const USB_CONFIG_DESCRIPTOR_BYTES = 9;
export const USB_INTERFACE_DESCRIPTOR_BYTES = 9;
export const USB_ENDPOINT_DESCRIPTOR_BYTES = 7;
export const CCID_CLASS_DESCRIPTOR_BYTES = 0x36;

export const USB_CLASS_PER_INTERFACE = 0x00;
export const USB_CLASS_CCID = 0x0b;
export const USB_BCD_2_0 = 0x0200;
export const CCID_BCD_1_1 = 0x0110;
export const EP0_MAX_PACKET = 64;
export const BULK_MAX_PACKET_FULL_SPEED = 64;
export const INTERRUPT_MAX_PACKET = 8;
export const INTERRUPT_INTERVAL_MS = 16;

export const EP_DIR_IN = 0x80;
export const EP_TYPE_BULK = 0x02;
export const EP_TYPE_INTERRUPT = 0x03;
export const EP_TYPE_MASK = 0x03;

/** pid.codes test VID/PID: free for development devices that never ship. */
export const UKEY_VENDOR_ID = 0x1209;
export const UKEY_PRODUCT_ID = 0x0001;
export const UKEY_BCD_DEVICE = 0x0100;
export const UKEY_CONFIGURATION_VALUE = 1;
export const UKEY_INTERFACE_NUMBER = 0;
export const UKEY_BULK_OUT_EP = 0x01;
export const UKEY_BULK_IN_EP = 0x82;
export const UKEY_INTERRUPT_IN_EP = 0x83;
export const STRING_INDEX_MANUFACTURER = 1;
export const STRING_INDEX_PRODUCT = 2;
export const STRING_INDEX_SERIAL = 3;
export const LANGID_EN_US = 0x0409;
export const CONFIG_ATTR_BUS_POWERED = 0x80;
export const CONFIG_MAX_POWER_100MA = 50; // units of 2 mA

// CCID class descriptor fields (CCID rev 1.1, table 5.1-1)
export const CCID_VOLTAGE_5V_3V_1V8 = 0x07;
export const CCID_PROTOCOLS_T0_T1 = 0x03;
export const CCID_DEFAULT_CLOCK_KHZ = 3580;
export const CCID_DEFAULT_DATA_RATE_BPS = 9600;
export const CCID_MAX_IFSD = 254;
/** Automatic parameter configuration, activation, voltage, clock, baud rate, PPS; extended APDU level. */
export const CCID_FEATURE_AUTO_CONFIG = 0x0000_00fe;
export const CCID_FEATURE_LEVEL_TPDU = 0x0001_0000;
export const CCID_FEATURE_LEVEL_SHORT_APDU = 0x0002_0000;
export const CCID_FEATURE_LEVEL_EXTENDED_APDU = 0x0004_0000;
export const CCID_FEATURE_LEVEL_MASK = 0x0007_0000;
export const CCID_CLASS_ANY = 0xff;

export interface CcidClassDescriptor {
  bcdCCID: number;
  bMaxSlotIndex: number;
  dwProtocols: number;
  dwDefaultClock: number;
  dwDataRate: number;
  dwMaxIFSD: number;
  dwFeatures: number;
  dwMaxCCIDMessageLength: number;
  bMaxCCIDBusySlots: number;
}

export interface UkeyDescriptorOptions {
  maxMessageLength: number;
  manufacturer?: string;
  product?: string;
  serial?: string;
}

export function deviceDescriptor(): Uint8Array {
  const out = new Uint8Array(USB_DEVICE_DESCRIPTOR_BYTES);
  const v = view(out);
  out[0] = USB_DEVICE_DESCRIPTOR_BYTES;
  out[1] = USB_DT_DEVICE;
  v.setUint16(2, USB_BCD_2_0, true);
  out[4] = USB_CLASS_PER_INTERFACE;
  out[5] = 0;
  out[6] = 0;
  out[7] = EP0_MAX_PACKET;
  v.setUint16(8, UKEY_VENDOR_ID, true);
  v.setUint16(10, UKEY_PRODUCT_ID, true);
  v.setUint16(12, UKEY_BCD_DEVICE, true);
  out[14] = STRING_INDEX_MANUFACTURER;
  out[15] = STRING_INDEX_PRODUCT;
  out[16] = STRING_INDEX_SERIAL;
  out[17] = 1; // bNumConfigurations
  return out;
}

export function ccidClassDescriptor(maxMessageLength: number): Uint8Array {
  const out = new Uint8Array(CCID_CLASS_DESCRIPTOR_BYTES);
  const v = view(out);
  out[0] = CCID_CLASS_DESCRIPTOR_BYTES;
  out[1] = USB_DT_CCID;
  v.setUint16(2, CCID_BCD_1_1, true);
  out[4] = 0; // bMaxSlotIndex: one slot
  out[5] = CCID_VOLTAGE_5V_3V_1V8;
  v.setUint32(6, CCID_PROTOCOLS_T0_T1, true);
  v.setUint32(10, CCID_DEFAULT_CLOCK_KHZ, true);
  v.setUint32(14, CCID_DEFAULT_CLOCK_KHZ, true); // dwMaximumClock
  out[18] = 1; // bNumClockSupported
  v.setUint32(19, CCID_DEFAULT_DATA_RATE_BPS, true);
  v.setUint32(23, CCID_DEFAULT_DATA_RATE_BPS, true); // dwMaxDataRate
  out[27] = 1; // bNumDataRatesSupported
  v.setUint32(28, CCID_MAX_IFSD, true);
  v.setUint32(32, 0, true); // dwSynchProtocols
  v.setUint32(36, 0, true); // dwMechanical
  v.setUint32(40, CCID_FEATURE_AUTO_CONFIG | CCID_FEATURE_LEVEL_EXTENDED_APDU, true);
  v.setUint32(44, maxMessageLength, true);
  out[48] = CCID_CLASS_ANY; // bClassGetResponse: echo the command's class
  out[49] = CCID_CLASS_ANY; // bClassEnvelope
  v.setUint16(50, 0, true); // wLcdLayout: no LCD
  out[52] = 0; // bPINSupport: none
  out[53] = 1; // bMaxCCIDBusySlots
  return out;
}

function endpoint(address: number, type: number, maxPacket: number, interval: number): Uint8Array {
  const out = new Uint8Array(USB_ENDPOINT_DESCRIPTOR_BYTES);
  out[0] = USB_ENDPOINT_DESCRIPTOR_BYTES;
  out[1] = USB_DT_ENDPOINT;
  out[2] = address;
  out[3] = type;
  view(out).setUint16(4, maxPacket, true);
  out[6] = interval;
  return out;
}

export function configurationDescriptor(maxMessageLength: number): Uint8Array {
  const parts = [
    new Uint8Array(USB_CONFIG_DESCRIPTOR_BYTES),
    Uint8Array.of(USB_INTERFACE_DESCRIPTOR_BYTES, USB_DT_INTERFACE, UKEY_INTERFACE_NUMBER, 0, 3, USB_CLASS_CCID, 0, 0, 0),
    ccidClassDescriptor(maxMessageLength),
    endpoint(UKEY_BULK_OUT_EP, EP_TYPE_BULK, BULK_MAX_PACKET_FULL_SPEED, 0),
    endpoint(UKEY_BULK_IN_EP, EP_TYPE_BULK, BULK_MAX_PACKET_FULL_SPEED, 0),
    endpoint(UKEY_INTERRUPT_IN_EP, EP_TYPE_INTERRUPT, INTERRUPT_MAX_PACKET, INTERRUPT_INTERVAL_MS),
  ];
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out[0] = USB_CONFIG_DESCRIPTOR_BYTES;
  out[1] = USB_DT_CONFIG;
  view(out).setUint16(2, total, true);
  out[4] = 1; // bNumInterfaces
  out[5] = UKEY_CONFIGURATION_VALUE;
  out[6] = 0; // iConfiguration
  out[7] = CONFIG_ATTR_BUS_POWERED;
  out[8] = CONFIG_MAX_POWER_100MA;
  return out;
}

/** String descriptor zero (the language list) or a UTF-16LE string. */
export function stringDescriptor(text: string | undefined): Uint8Array {
  if (text === undefined) return Uint8Array.of(4, USB_DT_STRING, LANGID_EN_US & 0xff, LANGID_EN_US >> 8);
  const chars = Math.min(text.length, 126);
  const out = new Uint8Array(2 + chars * 2);
  out[0] = out.length;
  out[1] = USB_DT_STRING;
  for (let i = 0; i < chars; i++) view(out).setUint16(2 + 2 * i, text.charCodeAt(i), true);
  return out;
}

export function decodeStringDescriptor(bytes: Uint8Array): string {
  if (bytes.length < 2 || bytes[1] !== USB_DT_STRING) throw protocolError("not a string descriptor");
  const end = Math.min(bytes.length, bytes[0] as number);
  let text = "";
  for (let i = 2; i + 1 < end; i += 2) text += String.fromCharCode(view(bytes).getUint16(i, true));
  return text;
}

// ---------------------------------------------------------------- host-side parsing

export interface DeviceDescriptorInfo {
  idVendor: number;
  idProduct: number;
  bcdDevice: number;
  bDeviceClass: number;
  bMaxPacketSize0: number;
  bNumConfigurations: number;
  iManufacturer: number;
  iProduct: number;
  iSerialNumber: number;
}

export function parseDeviceDescriptor(bytes: Uint8Array): DeviceDescriptorInfo {
  if (bytes.length < USB_DEVICE_DESCRIPTOR_BYTES || bytes[1] !== USB_DT_DEVICE) throw protocolError(`bad device descriptor (${bytes.length} bytes)`);
  const v = view(bytes);
  return {
    idVendor: v.getUint16(8, true), idProduct: v.getUint16(10, true), bcdDevice: v.getUint16(12, true),
    bDeviceClass: bytes[4] as number, bMaxPacketSize0: bytes[7] as number, bNumConfigurations: bytes[17] as number,
    iManufacturer: bytes[14] as number, iProduct: bytes[15] as number, iSerialNumber: bytes[16] as number,
  };
}

export interface CcidInterfaceInfo {
  configurationValue: number;
  interfaceNumber: number;
  bulkOut: number;
  bulkIn: number;
  interruptIn: number | undefined;
  ccid: CcidClassDescriptor;
}

function parseCcidClass(bytes: Uint8Array, at: number): CcidClassDescriptor {
  if (bytes[at] !== CCID_CLASS_DESCRIPTOR_BYTES || at + CCID_CLASS_DESCRIPTOR_BYTES > bytes.length) throw protocolError("bad CCID class descriptor length");
  const v = view(bytes);
  return {
    bcdCCID: v.getUint16(at + 2, true), bMaxSlotIndex: bytes[at + 4] as number, dwProtocols: v.getUint32(at + 6, true),
    dwDefaultClock: v.getUint32(at + 10, true), dwDataRate: v.getUint32(at + 19, true), dwMaxIFSD: v.getUint32(at + 28, true),
    dwFeatures: v.getUint32(at + 40, true), dwMaxCCIDMessageLength: v.getUint32(at + 44, true), bMaxCCIDBusySlots: bytes[at + 53] as number,
  };
}

/** Walk a full configuration descriptor and return its first CCID interface. */
export function findCcidInterface(config: Uint8Array): CcidInterfaceInfo {
  if (config.length < USB_CONFIG_DESCRIPTOR_BYTES || config[1] !== USB_DT_CONFIG) throw protocolError("bad configuration descriptor");
  const total = Math.min(config.length, view(config).getUint16(2, true));
  const configurationValue = config[5] as number;
  let current: Partial<CcidInterfaceInfo> | undefined;
  for (let at = 0; at + 2 <= total; ) {
    const length = config[at] as number;
    if (length < 2 || at + length > total) throw protocolError(`descriptor at ${at} has bad length ${length}`);
    const type = config[at + 1] as number;
    if (type === USB_DT_INTERFACE && length >= USB_INTERFACE_DESCRIPTOR_BYTES) {
      if (current?.ccid && current.bulkIn !== undefined && current.bulkOut !== undefined) break;
      current = config[at + 5] === USB_CLASS_CCID ? { configurationValue, interfaceNumber: config[at + 2] as number, interruptIn: undefined } : undefined;
    } else if (type === USB_DT_CCID && current) {
      current.ccid = parseCcidClass(config, at);
    } else if (type === USB_DT_ENDPOINT && current && length >= USB_ENDPOINT_DESCRIPTOR_BYTES) {
      const address = config[at + 2] as number;
      const kind = (config[at + 3] as number) & EP_TYPE_MASK;
      if (kind === EP_TYPE_BULK && address & EP_DIR_IN) current.bulkIn = address;
      else if (kind === EP_TYPE_BULK) current.bulkOut = address;
      else if (kind === EP_TYPE_INTERRUPT && address & EP_DIR_IN) current.interruptIn = address;
    }
    at += length;
  }
  if (!current?.ccid || current.bulkIn === undefined || current.bulkOut === undefined) throw protocolError("no CCID interface (class 0x0b with bulk-in, bulk-out and a CCID descriptor)");
  return current as CcidInterfaceInfo;
}
