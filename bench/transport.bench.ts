/**
 * Round-trip time of one small APDU (80 EE 00 00 02 01 02 00 -> 01 02 90 00) over each
 * transport, measured in the same run as two floors: a plain loopback TCP echo and a plain
 * echo across the socat pty pair the serial transport uses.
 *
 * - usbip:  CcidChannel -> userspace USB/IP client -> TCP -> serveUsbip -> CCID -> card
 * - vpcd:   PcscChannel -> pcscd -> vpcd driver -> TCP -> serveVpcd -> card (quickack route)
 * - serial: SerialChannel -> pty -> socat -> pty -> serveSerial -> card
 */
import { createServer, connect, type Socket } from "node:net";
import type { BenchModule, Metric } from "./harness.ts";
import { median, percentile } from "./harness.ts";
import { CcidChannel, importUsbipDevice, PcscChannel, SerialChannel, serveSerial, serveUsbip, serveVpcd, type ApduChannel } from "../src/transport/index.ts";
import { openSerialPort, closeSerialPort } from "../src/transport/serial-port.ts";
import { hasTool } from "../test/support/tools.ts";
import { otherPcscdRunning, startPcscd, VPCD_READER, vpcdAddress } from "../test/transport/support/pcscd.ts";
import { startPtyPair } from "../test/transport/support/pty.ts";
import { TestCard } from "../test/transport/support/test-card.ts";

const APDU = Uint8Array.of(0x80, 0xee, 0x00, 0x00, 0x02, 0x01, 0x02, 0x00);
const WARMUP = 200;
const SAMPLES = 3000;
const SLOW_SAMPLES = 15;
const TRANSPORTS = ["usbip", "vpcd", "serial", "tcp_floor", "pty_floor"] as const;
const GOALS: Record<string, string> = { usbip: "<= 150", vpcd: "<= 500", serial: "<= 1000" };

async function sample(n: number, once: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(WARMUP, n); i++) await once();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once();
    out.push((performance.now() - t) * 1000);
  }
  return out;
}

function apduLoop(channel: ApduChannel, n = SAMPLES): Promise<number[]> {
  return sample(n, () => channel.transmit(APDU));
}

async function usbip(): Promise<number[]> {
  const server = await serveUsbip(new TestCard(), { port: 0 });
  const channel = await CcidChannel.open(await importUsbipDevice(server.host, server.port, "1-1"), server.target);
  await channel.powerOn();
  try {
    return await apduLoop(channel);
  } finally {
    await channel.close();
    await server.close();
  }
}

async function vpcd(host: string, n: number): Promise<number[] | string> {
  if (!hasTool("pcscd")) return "pcscd missing";
  const busy = otherPcscdRunning();
  if (busy) return busy;
  const pcscd = await startPcscd();
  const card = await serveVpcd(new TestCard(), { host, port: pcscd.port });
  try {
    await card.connected();
    const channel = await PcscChannel.open(VPCD_READER);
    await channel.powerOn();
    const out = await apduLoop(channel, n);
    await channel.close();
    return out;
  } finally {
    await card.close();
    await pcscd.stop();
  }
}

async function serial(): Promise<number[] | string> {
  if (!hasTool("socat")) return "socat missing";
  const pty = await startPtyPair();
  const device = await serveSerial(new TestCard(), { path: pty.a });
  const channel = await SerialChannel.open(pty.b);
  try {
    await channel.powerOn();
    return await apduLoop(channel);
  } finally {
    await channel.close();
    await device.close();
    await pty.stop();
  }
}

/** Write 8 bytes, wait for them to come back. */
function echoOnce(write: (b: Uint8Array) => void, onData: (fn: (n: number) => void) => void, size: number): () => Promise<void> {
  let waiting: { need: number; done: () => void } | undefined;
  onData((n) => {
    if (!waiting) return;
    waiting.need -= n;
    if (waiting.need <= 0) {
      const w = waiting;
      waiting = undefined;
      w.done();
    }
  });
  const payload = new Uint8Array(size).fill(0x42);
  return () => new Promise<void>((resolve) => {
    waiting = { need: size, done: resolve };
    write(payload);
  });
}

async function tcpFloor(): Promise<number[]> {
  const server = createServer((s) => {
    s.setNoDelay(true);
    s.on("data", (d) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const socket: Socket = await new Promise((r) => {
    const s = connect({ port, host: "127.0.0.1", noDelay: true }, () => r(s));
  });
  try {
    return await sample(SAMPLES, echoOnce((b) => socket.write(b), (fn) => socket.on("data", (d: Buffer) => fn(d.length)), APDU.length));
  } finally {
    socket.destroy();
    await new Promise((r) => server.close(r));
  }
}

async function ptyFloor(): Promise<number[] | string> {
  if (!hasTool("socat")) return "socat missing";
  const pty = await startPtyPair();
  const a = await openSerialPort(pty.a, 115200);
  const b = await openSerialPort(pty.b, 115200);
  a.on("data", (d: Buffer) => a.write(d));
  try {
    return await sample(SAMPLES, echoOnce((x) => b.write(x), (fn) => b.on("data", (d: Buffer) => fn(d.length)), APDU.length));
  } finally {
    await closeSerialPort(a);
    await closeSerialPort(b);
    await pty.stop();
  }
}

function metrics(name: string, result: number[] | string, out: Record<string, Metric>, note: string): void {
  if (typeof result === "string") {
    process.stderr.write(`bench transport.${name}: skipped: ${result}\n`);
    return;
  }
  const goal = GOALS[name];
  out[`transport.rtt_us_p50.${name}`] = { value: Math.round(median(result)), unit: "us", ...(goal ? { goal } : {}), note: `${result.length} APDUs; ${note}` };
  out[`transport.rtt_us_p99.${name}`] = { value: Math.round(percentile(result, 99)), unit: "us", note };
}

const bench: BenchModule = {
  ids: [...TRANSPORTS.flatMap((t) => [`transport.rtt_us_p50.${t}`, `transport.rtt_us_p99.${t}`]), "transport.rtt_us_p50.vpcd_delayed_ack", "transport.rtt_us_p99.vpcd_delayed_ack"],
  async run() {
    const out: Record<string, Metric> = {};
    metrics("tcp_floor", await tcpFloor(), out, "8-byte echo over loopback TCP, same process");
    metrics("usbip", await usbip(), out, "CCID over the userspace USB/IP client");
    const quick = vpcdAddress();
    metrics("vpcd", await vpcd(quick, SAMPLES), out, `PC/SC -> pcscd -> vpcd -> card via ${quick}${quick === "127.0.0.1" ? " (no quickack route: not root?)" : " (quickack route)"}`);
    metrics("vpcd_delayed_ack", await vpcd("127.0.0.1", SLOW_SAMPLES), out, "the same without the quickack route: Nagle + delayed ACK");
    metrics("pty_floor", await ptyFloor(), out, "8-byte echo across the socat pty pair");
    metrics("serial", await serial(), out, "serial framing over the socat pty pair");
    return out;
  },
};
export default bench;
