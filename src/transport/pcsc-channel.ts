/**
 * PC/SC channel: talks to any reader pcscd knows (a real token's CCID reader, or vpcd with
 * our virtual card) through the maintained Node binding @pokusew/pcsclite. The binding is
 * an optional native dependency: without it, or without pcscd, opening fails with
 * ChannelError UNAVAILABLE and says why.
 */
import { ChannelError, type ApduChannel } from "./channel.ts";

export const PCSC_BINDING = "@pokusew/pcsclite";
export const PCSC_OPEN_TIMEOUT_MS = 5000;
/** Generous: on-card key generation takes seconds; pcsc-lite itself never gives up. */
export const PCSC_TRANSMIT_TIMEOUT_MS = 30_000;
export const PCSC_MAX_RESPONSE_BYTES = 65538;
const SW_BYTES = 2;

/** The parts of @pokusew/pcsclite we use (it ships its own types; we keep ours so tsc needs no native build). */
interface PcscReader {
  name: string;
  state: number;
  connected: boolean;
  SCARD_SHARE_SHARED: number;
  SCARD_SHARE_EXCLUSIVE: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_STATE_PRESENT: number;
  SCARD_LEAVE_CARD: number;
  SCARD_RESET_CARD: number;
  SCARD_UNPOWER_CARD: number;
  on(event: "status", listener: (status: { state: number; atr?: Buffer }) => void): void;
  on(event: "end" | "error", listener: (error?: Error) => void): void;
  connect(options: { share_mode?: number; protocol?: number }, cb: (error: Error | null, protocol: number) => void): void;
  disconnect(disposition: number, cb: (error: Error | null) => void): void;
  transmit(data: Buffer, responseLength: number, protocol: number, cb: (error: Error | null, data: Buffer) => void): void;
  close(): void;
}
interface PcscContext {
  on(event: "reader", listener: (reader: PcscReader) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  close(): void;
}

async function loadBinding(): Promise<() => PcscContext> {
  try {
    const name = PCSC_BINDING; // a variable, so tsc does not need the optional package
    const module = (await import(name)) as { default?: () => PcscContext };
    if (typeof module.default !== "function") throw new Error("unexpected module shape");
    return module.default;
  } catch (error) {
    throw new ChannelError("UNAVAILABLE", `PC/SC binding ${PCSC_BINDING} is not available (${(error as Error).message}); install it with: npm install ${PCSC_BINDING} (needs libpcsclite-dev)`);
  }
}

export interface PcscChannelOptions {
  timeoutMs?: number;
  /** How long one transmit may take before TIMEOUT (the reader stays connected). */
  transmitTimeoutMs?: number;
  /** Exclusive access keeps other PC/SC clients off the card while we hold it. */
  exclusive?: boolean;
}

/** Card-removed and similar errors mean NO_CARD; a dead pcscd means UNAVAILABLE; the rest PROTOCOL. */
function mapError(reader: string, what: string, error: Error): ChannelError {
  const text = error.message;
  if (/remov|no smart ?card|unpowered|unresponsive|reset|not transacted|0x80100069|0x80100066|0x80100067|0x8010000c|0x80100068|0x80100016/i.test(text)) return new ChannelError("NO_CARD", `${reader}: ${what}: ${text}`);
  if (/service|no_service|0x8010001d|unknown reader|0x80100009|reader.*unavailable|0x80100017/i.test(text)) return new ChannelError("UNAVAILABLE", `${reader}: ${what}: ${text}`);
  return new ChannelError("PROTOCOL", `${reader}: ${what}: ${text}`);
}

export class PcscChannel implements ApduChannel {
  private protocol = 0;
  private atr: Uint8Array | undefined;
  private present = false;
  private closed = false;
  private presenceWaiters: (() => void)[] = [];

  private constructor(private readonly context: PcscContext, private readonly reader: PcscReader, readonly target: string, private readonly options: PcscChannelOptions) {
    reader.on("status", (status) => {
      this.present = (status.state & reader.SCARD_STATE_PRESENT) !== 0;
      if (status.atr && status.atr.length) this.atr = new Uint8Array(status.atr);
      if (this.present) for (const w of this.presenceWaiters.splice(0)) w();
    });
    reader.on("error", () => undefined);
    reader.on("end", () => {
      this.present = false;
    });
  }

  /** Connect to pcscd and find the reader whose name equals (or starts with) `readerName`. */
  static async open(readerName: string, options: PcscChannelOptions = {}): Promise<PcscChannel> {
    const create = await loadBinding();
    const timeoutMs = options.timeoutMs ?? PCSC_OPEN_TIMEOUT_MS;
    const context = create();
    const seen: string[] = [];
    return new Promise<PcscChannel>((resolve, reject) => {
      const timer = setTimeout(() => {
        context.close();
        reject(new ChannelError("UNAVAILABLE", `no PC/SC reader "${readerName}" within ${timeoutMs} ms (readers seen: ${seen.join(", ") || "none"})`));
      }, timeoutMs);
      context.on("error", (error) => {
        clearTimeout(timer);
        context.close();
        reject(mapError(readerName, "establish context", error));
      });
      context.on("reader", (reader) => {
        seen.push(reader.name);
        reader.on("error", () => undefined); // status polling errors of readers we do not use
        if (reader.name !== readerName && !reader.name.startsWith(readerName)) return;
        clearTimeout(timer);
        resolve(new PcscChannel(context, reader, `pcsc:${readerName}`, options));
      });
    });
  }

  async powerOn(): Promise<Uint8Array> {
    this.checkOpen();
    if (this.reader.connected) await this.disconnect(this.reader.SCARD_UNPOWER_CARD).catch(() => undefined);
    await this.waitForCard();
    this.protocol = await new Promise<number>((resolve, reject) => {
      const share = this.options.exclusive ? this.reader.SCARD_SHARE_EXCLUSIVE : this.reader.SCARD_SHARE_SHARED;
      this.reader.connect({ share_mode: share, protocol: this.reader.SCARD_PROTOCOL_T0 | this.reader.SCARD_PROTOCOL_T1 }, (error, protocol) =>
        error ? reject(mapError(this.target, "connect", error)) : resolve(protocol));
    });
    if (!this.atr) throw new ChannelError("NO_CARD", `${this.target}: connected but the reader reported no ATR`);
    return this.atr;
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    this.checkOpen();
    if (!this.reader.connected) throw new ChannelError("NO_CARD", `${this.target}: card is not powered: call powerOn first`);
    const limit = this.options.transmitTimeoutMs ?? PCSC_TRANSMIT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ChannelError("TIMEOUT", `${this.target}: no answer within ${limit} ms`)), limit);
      this.reader.transmit(Buffer.from(command), PCSC_MAX_RESPONSE_BYTES, this.protocol, (error, data) => {
        clearTimeout(timer);
        if (error) return reject(mapError(this.target, "transmit", error));
        // vpcd reports a card that vanished mid-command as a successful empty answer
        if (data.length < SW_BYTES) return reject(new ChannelError("NO_CARD", `${this.target}: the card answered ${data.length} bytes, no status word (mute or removed)`));
        resolve(new Uint8Array(data));
      });
    });
  }

  async powerOff(): Promise<void> {
    this.checkOpen();
    if (this.reader.connected) await this.disconnect(this.reader.SCARD_UNPOWER_CARD);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.reader.connected) await this.disconnect(this.reader.SCARD_LEAVE_CARD).catch(() => undefined);
    this.closed = true;
    this.reader.close();
    this.context.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ChannelError("DISCONNECTED", `${this.target}: channel is closed`);
  }

  private waitForCard(): Promise<void> {
    if (this.present) return Promise.resolve();
    const timeoutMs = this.options.timeoutMs ?? PCSC_OPEN_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ChannelError("NO_CARD", `${this.target}: no card in the reader within ${timeoutMs} ms`)), timeoutMs);
      this.presenceWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private disconnect(disposition: number): Promise<void> {
    return new Promise((resolve, reject) => this.reader.disconnect(disposition, (error) => (error ? reject(mapError(this.target, "disconnect", error)) : resolve())));
  }
}
