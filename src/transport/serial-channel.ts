/**
 * SerialChannel: the host side of the serial framing (serial-frame.ts), for dev boards
 * and for our own serveSerial. One request at a time; each carries a fresh SEQ, the answer
 * must repeat it, and answers to earlier (timed-out) requests are dropped. A frame the
 * device reports corrupt (ERROR BAD_FRAME) is sent again, up to SERIAL_RETRIES times.
 */
import { ChannelError, type ApduChannel } from "./channel.ts";
import * as F from "./serial-frame.ts";
import { closeSerialPort, openSerialPort, type SerialPort } from "./serial-port.ts";

export const SERIAL_TIMEOUT_MS = 3000;
export const SERIAL_RETRIES = 2;

export interface SerialChannelOptions {
  baudRate?: number;
  timeoutMs?: number;
}

type Waiter = { seq: number; resolve: (f: F.SerialFrame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class SerialChannel implements ApduChannel {
  private seq = 0;
  private waiter: Waiter | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly deframer = new F.SerialDeframer();
  private closed = false;
  private readonly timeoutMs: number;
  private readonly started = performance.now();

  private constructor(private readonly port: SerialPort, readonly target: string, options: SerialChannelOptions) {
    this.timeoutMs = options.timeoutMs ?? SERIAL_TIMEOUT_MS;
    port.on("data", (chunk: Buffer) => this.receive(this.deframer.push(chunk, this.now())));
    port.on("close", () => this.fail(new ChannelError("DISCONNECTED", `${target}: serial port closed`)));
    port.on("error", (e: Error) => this.fail(new ChannelError("DISCONNECTED", `${target}: ${e.message}`)));
  }

  static async open(path: string, options: SerialChannelOptions = {}): Promise<SerialChannel> {
    const baud = options.baudRate ?? F.DEFAULT_BAUD_RATE;
    const port = await openSerialPort(path, baud);
    return new SerialChannel(port, `serial:${path}?baud=${baud}`, options);
  }

  async powerOn(): Promise<Uint8Array> {
    const answer = await this.request(F.TYPE_POWER_ON, new Uint8Array(0));
    if (answer.type !== F.TYPE_ATR) throw this.unexpected(answer, "power on");
    return answer.payload.slice();
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    const answer = await this.request(F.TYPE_APDU, command);
    if (answer.type !== F.TYPE_RESPONSE) throw this.unexpected(answer, "transmit");
    return answer.payload.slice();
  }

  async powerOff(): Promise<void> {
    const answer = await this.request(F.TYPE_POWER_OFF, new Uint8Array(0));
    if (answer.type !== F.TYPE_ACK) throw this.unexpected(answer, "power off");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new ChannelError("DISCONNECTED", `${this.target}: channel is closed`));
    await closeSerialPort(this.port);
  }

  private now(): number {
    return performance.now() - this.started;
  }

  private unexpected(frame: F.SerialFrame, what: string): ChannelError {
    if (frame.type === F.TYPE_ERROR) {
      const code = frame.payload[0];
      if (code === F.ERROR_CARD_MUTE) return new ChannelError("NO_CARD", `${this.target}: ${what}: card is mute (power lost mid-command)`);
      if (code === F.ERROR_NOT_POWERED) return new ChannelError("NO_CARD", `${this.target}: ${what}: card is not powered`);
      return new ChannelError("PROTOCOL", `${this.target}: ${what}: device error 0x${(code ?? 0).toString(16)}`);
    }
    return new ChannelError("PROTOCOL", `${this.target}: ${what}: unexpected frame type 0x${frame.type.toString(16)}`);
  }

  private request(type: number, payload: Uint8Array): Promise<F.SerialFrame> {
    if (this.closed) return Promise.reject(new ChannelError("DISCONNECTED", `${this.target}: channel is closed`));
    if (payload.length > F.SERIAL_MAX_PAYLOAD) return Promise.reject(new ChannelError("PROTOCOL", `${this.target}: APDU of ${payload.length} bytes exceeds the serial frame limit ${F.SERIAL_MAX_PAYLOAD}`));
    const run = this.queue.then(() => this.exchange(type, payload, SERIAL_RETRIES));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async exchange(type: number, payload: Uint8Array, retries: number): Promise<F.SerialFrame> {
    const seq = this.seq;
    this.seq = (this.seq + 1) & 0xff;
    const answer = await new Promise<F.SerialFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new ChannelError("TIMEOUT", `${this.target}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = { seq, resolve, reject, timer };
      this.port.write(F.encodeSerialFrame({ seq, type, payload }));
    });
    if (answer.type === F.TYPE_ERROR && answer.payload[0] === F.ERROR_BAD_FRAME && retries > 0) return this.exchange(type, payload, retries - 1);
    return answer;
  }

  private receive(result: F.DeframeResult): void {
    for (const frame of result.frames) {
      const w = this.waiter;
      if (!w || frame.seq !== w.seq) continue; // stale answer to a timed-out request
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(frame);
    }
  }

  private fail(error: ChannelError): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(error);
    }
  }
}
