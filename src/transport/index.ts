/**
 * src/transport: the device sides that serve a simulated Ukey (USB/IP with CCID, vpcd,
 * serial) and the host-side ApduChannel drivers that reach a Ukey, simulated or real
 * (in-process, USB/IP, PC/SC, serial, native USB). docs/transports.md has the set-up.
 */
export { ChannelError, type ApduChannel, type ChannelErrorCode } from "./channel.ts";
export { InProcessChannel } from "./in-process.ts";

// target URIs
export { parseTarget, formatTarget, openChannel, MAX_BAUD_RATE, type Target, type OpenChannelDeps } from "./target.ts";
export { ReconnectingChannel } from "./reconnect.ts";

// device sides
export { serveUsbip, usbipDeviceRecord, USBIP_DEFAULT_BUSID, type UsbipServeOptions, type ServerHandle } from "./usbip-server.ts";
export { CcidUsbDevice, TIME_EXTENSION_INTERVAL_MS, type CcidDeviceOptions, type ControlResult } from "./ccid-device.ts";
export { serveVpcd, VpcdCard, encodeVpcdFrame, takeVpcdFrame, quickAckRouteCommand, VPCD_PORT_DEFAULT, VPCD_QUICKACK_ADDRESS, type VpcdServeOptions, type VpcdHandle } from "./vpcd.ts";
export { serveSerial, SerialCardLogic, type SerialServeOptions, type SerialHandle } from "./serial-device.ts";

// host sides
export { CcidChannel, type CcidChannelOptions } from "./ccid-host.ts";
export type { UsbDeviceBackend } from "./usb-device.ts";
export { importUsbipDevice, listUsbipDevices, UsbipClientDevice } from "./usbip-client.ts";
export { openNativeUsb } from "./usb-native.ts";
export { PcscChannel, PCSC_BINDING, type PcscChannelOptions } from "./pcsc-channel.ts";
export { SerialChannel, type SerialChannelOptions } from "./serial-channel.ts";

// wire formats, for tools and tests that speak them directly
export * as usbipWire from "./usbip-codec.ts";
export * as ccidWire from "./ccid-codec.ts";
export * as serialWire from "./serial-frame.ts";
export * as usbDescriptors from "./usb-descriptors.ts";
export { ByteQueue } from "./bytes.ts";
