/**
 * The host side's view of a USB device: control transfers on endpoint 0 and bulk or
 * interrupt transfers on the others. The CCID driver is written against this interface;
 * backends are the userspace USB/IP client and the `usb` package (libusb) for real tokens.
 *
 * Failures are ChannelErrors: TIMEOUT (the transfer was cancelled after timeoutMs),
 * DISCONNECTED (the device or link went away), PROTOCOL (a stall or a malformed reply).
 */
import type { UsbSetup } from "./usbip-codec.ts";

export interface UsbDeviceBackend {
  /** Human-readable: where the device is. */
  readonly description: string;
  controlIn(setup: UsbSetup, timeoutMs: number): Promise<Uint8Array>;
  controlOut(setup: UsbSetup, data: Uint8Array, timeoutMs: number): Promise<void>;
  transferOut(endpoint: number, data: Uint8Array, timeoutMs: number): Promise<void>;
  transferIn(endpoint: number, length: number, timeoutMs: number): Promise<Uint8Array>;
  /** Claim the interface before bulk transfers (a no-op where nothing needs claiming). */
  claimInterface(interfaceNumber: number): Promise<void>;
  close(): Promise<void>;
}

export const USB_REQ_GET_DESCRIPTOR = 0x06;
export const USB_REQ_SET_CONFIGURATION = 0x09;
export const USB_REQ_GET_CONFIGURATION = 0x08;
export const REQUEST_TYPE_STANDARD_DEVICE_IN = 0x80;
export const REQUEST_TYPE_STANDARD_DEVICE_OUT = 0x00;
export const REQUEST_TYPE_CLASS_INTERFACE_IN = 0xa1;
export const REQUEST_TYPE_CLASS_INTERFACE_OUT = 0x21;

export function getDescriptorSetup(type: number, index: number, length: number, languageId = 0): UsbSetup {
  return { bmRequestType: REQUEST_TYPE_STANDARD_DEVICE_IN, bRequest: USB_REQ_GET_DESCRIPTOR, wValue: (type << 8) | index, wIndex: languageId, wLength: length };
}
