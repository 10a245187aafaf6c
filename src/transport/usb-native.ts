/**
 * The second UsbDeviceBackend: real tokens through the `usb` package (libusb, WebUSB-style
 * API). Where the kernel has no USB subsystem (no /sys/bus/usb, as in containers and this
 * CI) opening fails with ChannelError UNAVAILABLE "no USB subsystem".
 */
import { ChannelError } from "./channel.ts";
import type { UsbDeviceBackend } from "./usb-device.ts";
import type { UsbSetup } from "./usbip-codec.ts";

const REQUEST_TYPES = ["standard", "class", "vendor"] as const;
const RECIPIENTS = ["device", "interface", "endpoint", "other"] as const;
const TYPE_SHIFT = 5;
const TYPE_MASK = 0x03;
const RECIPIENT_MASK = 0x1f;
const EP_NUMBER_MASK = 0x0f;

type WebUsbDevice = {
  vendorId: number;
  productId: number;
  configuration?: { configurationValue: number } | null;
  open(): Promise<void>;
  close(): Promise<void>;
  selectConfiguration(value: number): Promise<void>;
  claimInterface(n: number): Promise<void>;
  controlTransferIn(setup: object, length: number): Promise<{ data?: DataView; status: string }>;
  controlTransferOut(setup: object, data?: Uint8Array): Promise<{ status: string }>;
  transferIn(endpoint: number, length: number): Promise<{ data?: DataView; status: string }>;
  transferOut(endpoint: number, data: Uint8Array): Promise<{ status: string }>;
};

function setupOf(s: UsbSetup): object {
  const requestType = REQUEST_TYPES[(s.bmRequestType >> TYPE_SHIFT) & TYPE_MASK];
  const recipient = RECIPIENTS[s.bmRequestType & RECIPIENT_MASK];
  if (!requestType || !recipient) throw new ChannelError("PROTOCOL", `unsupported bmRequestType 0x${s.bmRequestType.toString(16)}`);
  return { requestType, recipient, request: s.bRequest, value: s.wValue, index: s.wIndex };
}

function bytesOf(view: DataView | undefined): Uint8Array {
  return view ? new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)) : new Uint8Array(0);
}

export function isNoUsbSubsystem(error: unknown): boolean {
  return /\/sys\/bus\/usb|LIBUSB_ERROR_(OTHER|NOT_SUPPORTED|ACCESS)|no such file/i.test(String((error as Error)?.message ?? error));
}

/** Find and open the first device with this VID:PID. */
export async function openNativeUsb(vendorId: number, productId: number): Promise<UsbDeviceBackend> {
  const label = `usb:${hex4(vendorId)}:${hex4(productId)}`;
  let devices: WebUsbDevice[];
  try {
    const { WebUSB } = (await import("usb")) as unknown as { WebUSB: new (o: object) => { getDevices(): Promise<WebUsbDevice[]> } };
    devices = await new WebUSB({ allowAllDevices: true }).getDevices();
  } catch (error) {
    if (isNoUsbSubsystem(error)) throw new ChannelError("UNAVAILABLE", `${label}: no USB subsystem on this machine (${(error as Error).message})`);
    throw new ChannelError("UNAVAILABLE", `${label}: USB is not usable: ${(error as Error).message}`);
  }
  const device = devices.find((d) => d.vendorId === vendorId && d.productId === productId);
  if (!device) throw new ChannelError("NO_CARD", `${label}: no such device attached (${devices.length} USB devices seen)`);
  try {
    await device.open();
  } catch (error) {
    throw new ChannelError("UNAVAILABLE", `${label}: cannot open the device (permissions, or a kernel driver holds it): ${(error as Error).message}`);
  }
  return new NativeUsbDevice(device, label);
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

class NativeUsbDevice implements UsbDeviceBackend {
  constructor(private readonly device: WebUsbDevice, readonly description: string) {}

  async controlIn(setup: UsbSetup, timeoutMs: number): Promise<Uint8Array> {
    const r = await this.guard(this.device.controlTransferIn(setupOf(setup), setup.wLength), timeoutMs, "control in");
    return bytesOf(r.data);
  }

  async controlOut(setup: UsbSetup, data: Uint8Array, timeoutMs: number): Promise<void> {
    if (setup.bRequest === 0x09 && setup.bmRequestType === 0) {
      await this.guard(this.device.selectConfiguration(setup.wValue).then(() => ({ status: "ok" })), timeoutMs, "set configuration");
      return;
    }
    await this.guard(this.device.controlTransferOut(setupOf(setup), data), timeoutMs, "control out");
  }

  async transferOut(endpoint: number, data: Uint8Array, timeoutMs: number): Promise<void> {
    await this.guard(this.device.transferOut(endpoint & EP_NUMBER_MASK, data), timeoutMs, "bulk out");
  }

  async transferIn(endpoint: number, length: number, timeoutMs: number): Promise<Uint8Array> {
    const r = await this.guard(this.device.transferIn(endpoint & EP_NUMBER_MASK, length), timeoutMs, "bulk in");
    return bytesOf(r.data);
  }

  async claimInterface(interfaceNumber: number): Promise<void> {
    try {
      await this.device.claimInterface(interfaceNumber);
    } catch (error) {
      throw new ChannelError("UNAVAILABLE", `${this.description}: cannot claim interface ${interfaceNumber} (is pcscd's CCID driver holding it?): ${(error as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await this.device.close().catch(() => undefined);
  }

  /** WebUSB transfers have no timeout: race them; a stall is a PROTOCOL error, a vanished device DISCONNECTED. */
  private async guard<T extends { status: string }>(transfer: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ChannelError("TIMEOUT", `${this.description}: ${what} took more than ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const r = await Promise.race([transfer, timeout]);
      if (r.status === "stall") throw new ChannelError("PROTOCOL", `${this.description}: ${what} stalled`);
      if (r.status !== "ok") throw new ChannelError("PROTOCOL", `${this.description}: ${what} status ${r.status}`);
      return r;
    } catch (error) {
      if (error instanceof ChannelError) throw error;
      throw new ChannelError("DISCONNECTED", `${this.description}: ${what}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
