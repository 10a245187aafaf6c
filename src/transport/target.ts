/**
 * Target URIs name what a channel reaches, so suites and reports can say "ran against
 * usbip://lab-pi:3240/1-1" and anyone can reopen it:
 *
 *   sim:IMAGE                 the simulator in this process, state in an image file
 *   usbip://HOST[:PORT]/BUSID a USB/IP-exported token (ours or a real one behind usbipd)
 *   pcsc:READER               a PC/SC reader through pcscd (URI-encoded name allowed)
 *   serial:PATH[?baud=N]      a dev board on a serial line
 *   usb:VID:PID               a token on this machine's USB, hex ids
 */
import type { SimCard } from "../cos/index.ts";
import { ChannelError, type ApduChannel } from "./channel.ts";
import { CcidChannel } from "./ccid-host.ts";
import { InProcessChannel } from "./in-process.ts";
import { PcscChannel } from "./pcsc-channel.ts";
import { ReconnectingChannel } from "./reconnect.ts";
import { SerialChannel } from "./serial-channel.ts";
import { DEFAULT_BAUD_RATE } from "./serial-frame.ts";
import { hex4, openNativeUsb } from "./usb-native.ts";
import { importUsbipDevice } from "./usbip-client.ts";
import { USBIP_PORT_DEFAULT } from "./usbip-codec.ts";

export type Target =
  | { scheme: "sim"; image: string }
  | { scheme: "usbip"; host: string; port: number; busid: string }
  | { scheme: "pcsc"; reader: string }
  | { scheme: "serial"; path: string; baudRate: number }
  | { scheme: "usb"; vendorId: number; productId: number };

export const MAX_BAUD_RATE = 4_000_000;
const MAX_PORT = 65535;

function bad(uri: string, why: string): ChannelError {
  return new ChannelError("BAD_TARGET", `bad target "${uri}": ${why} (expected sim:IMAGE, usbip://HOST:PORT/BUSID, pcsc:READER, serial:PATH[?baud=N] or usb:VID:PID)`);
}

function parsePort(uri: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_PORT) throw bad(uri, `port "${text}" is not 1..65535`);
  return Number(text);
}

function parseUsbip(uri: string, rest: string): Target {
  const m = /^\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::([^/]*))?\/([0-9]+-[0-9.]+)$/.exec(rest);
  if (!m) throw bad(uri, "usbip needs //HOST[:PORT]/BUSID, e.g. usbip://127.0.0.1:3240/1-1");
  const host = (m[1] as string).replace(/^\[|\]$/g, "");
  return { scheme: "usbip", host, port: m[2] === undefined ? USBIP_PORT_DEFAULT : parsePort(uri, m[2]), busid: m[3] as string };
}

function parseSerial(uri: string, rest: string): Target {
  const [path, query, extra] = rest.split("?");
  if (extra !== undefined || !path) throw bad(uri, "serial needs a device path");
  let baudRate = DEFAULT_BAUD_RATE;
  if (query !== undefined) {
    const m = /^baud=(\d{1,7})$/.exec(query);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > MAX_BAUD_RATE) throw bad(uri, `"${query}" is not baud=N (1..${MAX_BAUD_RATE})`);
    baudRate = Number(m[1]);
  }
  return { scheme: "serial", path, baudRate };
}

function parseUsb(uri: string, rest: string): Target {
  const m = /^(?:0x)?([0-9a-fA-F]{1,4}):(?:0x)?([0-9a-fA-F]{1,4})$/.exec(rest);
  if (!m) throw bad(uri, "usb needs VID:PID in hex, e.g. usb:1209:0001");
  return { scheme: "usb", vendorId: parseInt(m[1] as string, 16), productId: parseInt(m[2] as string, 16) };
}

export function parseTarget(uri: string): Target {
  const colon = uri.indexOf(":");
  if (colon <= 0) throw bad(uri, "no scheme");
  const scheme = uri.slice(0, colon);
  const rest = uri.slice(colon + 1);
  switch (scheme) {
    case "sim":
      if (!rest) throw bad(uri, "sim needs an image path (or 'memory')");
      return { scheme, image: rest };
    case "usbip":
      return parseUsbip(uri, rest);
    case "pcsc": {
      let reader: string;
      try {
        reader = decodeURIComponent(rest);
      } catch {
        throw bad(uri, "reader name is not valid URI encoding");
      }
      if (!reader.trim()) throw bad(uri, "pcsc needs a reader name");
      return { scheme, reader };
    }
    case "serial":
      return parseSerial(uri, rest);
    case "usb":
      return parseUsb(uri, rest);
    default:
      throw bad(uri, `unknown scheme "${scheme}"`);
  }
}

export function formatTarget(t: Target): string {
  switch (t.scheme) {
    case "sim":
      return `sim:${t.image}`;
    case "usbip":
      return `usbip://${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}/${t.busid}`;
    case "pcsc":
      return `pcsc:${t.reader}`;
    case "serial":
      return `serial:${t.path}?baud=${t.baudRate}`;
    case "usb":
      return `usb:${hex4(t.vendorId)}:${hex4(t.productId)}`;
  }
}

export interface OpenChannelDeps {
  /** Makes the simulated card of a sim: target; the CLI wires the COS factory here. */
  simCard?: (image: string) => SimCard | Promise<SimCard>;
  /** Per-answer timeout for device transports. */
  timeoutMs?: number;
}

/** Open a channel on a target URI. Device transports come wrapped to reconnect on the next powerOn. */
export async function openChannel(uri: string, deps: OpenChannelDeps = {}): Promise<ApduChannel> {
  const t = parseTarget(uri);
  const target = formatTarget(t);
  const timeoutMs = deps.timeoutMs;
  const opts = timeoutMs === undefined ? {} : { timeoutMs };
  switch (t.scheme) {
    case "sim": {
      if (!deps.simCard) throw new ChannelError("UNAVAILABLE", `${uri}: no simulator card factory was given for sim: targets`);
      return new InProcessChannel(await deps.simCard(t.image), target);
    }
    case "usbip": {
      const open = async () => CcidChannel.open(await importUsbipDevice(t.host, t.port, t.busid, timeoutMs), target, opts);
      return new ReconnectingChannel(target, open, await open());
    }
    case "pcsc": {
      const open = () => PcscChannel.open(t.reader, opts);
      return new ReconnectingChannel(target, open, await open());
    }
    case "serial": {
      const open = () => SerialChannel.open(t.path, { baudRate: t.baudRate, ...opts });
      return new ReconnectingChannel(target, open, await open());
    }
    case "usb": {
      const open = async () => CcidChannel.open(await openNativeUsb(t.vendorId, t.productId), target, opts);
      return new ReconnectingChannel(target, open, await open());
    }
  }
}
