/**
 * serveVpcd: the card side of vsmartcard's vpcd protocol. pcscd's vpcd driver listens
 * (port 35963 by default, see /etc/reader.conf.d/vpcd); the virtual card connects to it,
 * and every PC/SC application then sees a reader "Virtual PCD" with our card in it.
 *
 * Frames both ways: a 2-byte big-endian length, then that many bytes. A 1-byte frame from
 * vpcd is a control message (power off, power on, reset, get ATR); only "get ATR" is
 * answered. Any other frame is a command APDU, answered with the response APDU. When the
 * card goes mute (power cut mid-command) we close the connection: vpcd sees the card
 * removed, the PC/SC transmit fails, and we reconnect (a reinsertion). An empty answer
 * frame would be the protocol's way, but vpcd 0.8/Debian 3.3 then blocks for ever.
 */
import type { Socket } from "node:net";
import { CardMuteError, type SimCard } from "../cos/index.ts";
import { NULL_TRACE, toHex, type TraceSink } from "../sim/index.ts";
import { ByteQueue } from "./bytes.ts";
import { connectTcp } from "./net-util.ts";

export const VPCD_PORT_DEFAULT = 35963;
export const VPCD_LENGTH_BYTES = 2;
export const VPCD_MAX_FRAME_BYTES = 0xffff;
export const VPCD_CTRL_LEN = 1;
export const VPCD_CTRL_OFF = 0;
export const VPCD_CTRL_ON = 1;
export const VPCD_CTRL_RESET = 2;
export const VPCD_CTRL_ATR = 4;
export const VPCD_RECONNECT_DELAY_MS = 250;
/**
 * vpcd (vsmartcard <= 0.9 / Debian 3.3) writes the 2-byte length and the payload in two
 * send() calls without TCP_NODELAY: Nagle holds the payload until our kernel ACKs the
 * length, and Linux delays that ACK ~40 ms. Node cannot set TCP_QUICKACK, so the fix is a
 * route metric: connect to a loopback address whose route carries `quickack 1`.
 * See docs/transports.md, "vpcd latency".
 */
export const VPCD_QUICKACK_ADDRESS = "127.86.59.63";

/** The one-time, root-only command that makes ACKs towards `address` immediate. */
export function quickAckRouteCommand(address = VPCD_QUICKACK_ADDRESS): string[] {
  return ["ip", "route", "replace", "local", `${address}/32`, "dev", "lo", "table", "local", "quickack", "1"];
}

export interface VpcdServeOptions {
  host?: string;
  port?: number;
  reconnectDelayMs?: number;
  trace?: TraceSink;
  /** Called on connect, disconnect and errors; the server keeps retrying. */
  log?: (line: string) => void;
}

export interface VpcdHandle {
  readonly host: string;
  readonly port: number;
  /** Resolves when connected to vpcd (again). */
  connected(): Promise<void>;
  close(): Promise<void>;
}

/** Encode one vpcd frame (also used by tests playing the vpcd side). */
export function encodeVpcdFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > VPCD_MAX_FRAME_BYTES) throw new RangeError(`vpcd frame of ${payload.length} bytes exceeds ${VPCD_MAX_FRAME_BYTES}`);
  const out = new Uint8Array(VPCD_LENGTH_BYTES + payload.length);
  out[0] = payload.length >> 8;
  out[1] = payload.length & 0xff;
  out.set(payload, VPCD_LENGTH_BYTES);
  return out;
}

/** Take one frame from the stream, or undefined while it is incomplete. */
export function takeVpcdFrame(queue: ByteQueue): Uint8Array | undefined {
  if (queue.length < VPCD_LENGTH_BYTES) return undefined;
  const length = (queue.at(0) << 8) | queue.at(1);
  if (queue.length < VPCD_LENGTH_BYTES + length) return undefined;
  queue.skip(VPCD_LENGTH_BYTES);
  return queue.take(length);
}

/** The card-side state machine, free of sockets: one frame in, zero or one frame out. */
export class VpcdCard {
  private atr: Uint8Array | undefined;
  private powered = false;
  private seq = 0;

  constructor(private readonly card: SimCard, private readonly trace: TraceSink = NULL_TRACE) {}

  /** The answer to one frame: bytes to send, `undefined` for none, or `null` when the card went mute. */
  handle(frame: Uint8Array): Uint8Array | undefined | null {
    if (frame.length === VPCD_CTRL_LEN) return this.control(frame[0] as number);
    if (frame.length === 0) return undefined;
    if (!this.powered) return null;
    try {
      const response = this.card.process(frame);
      this.trace.emit({ kind: "apdu", seq: this.seq++, command: toHex(frame), response: toHex(response) });
      return response;
    } catch (error) {
      if (!(error instanceof CardMuteError)) throw error;
      this.powered = false;
      this.trace.emit({ kind: "apdu", seq: this.seq++, command: toHex(frame), response: "" });
      return null;
    }
  }

  /** vpcd lost us: a real card pulled from its reader loses power. */
  disconnected(): void {
    if (this.powered) this.card.powerOff();
    this.powered = false;
  }

  private control(code: number): Uint8Array | undefined {
    switch (code) {
      case VPCD_CTRL_OFF:
        if (this.powered) this.card.powerOff();
        this.powered = false;
        this.trace.emit({ kind: "power", seq: this.seq++, state: "off" });
        return undefined;
      case VPCD_CTRL_ON:
      case VPCD_CTRL_RESET:
        if (this.powered) this.card.powerOff();
        this.atr = this.card.powerOn();
        this.powered = true;
        this.trace.emit({ kind: "power", seq: this.seq++, state: "on", atr: toHex(this.atr) });
        return undefined;
      case VPCD_CTRL_ATR:
        return this.currentAtr();
      default:
        return undefined; // unknown control byte: ignored, as vicc does
    }
  }

  /** vpcd polls the ATR to see that the card is present; before the first power-on we learn it once. */
  private currentAtr(): Uint8Array {
    if (!this.atr) {
      this.atr = this.card.powerOn();
      if (!this.powered) this.card.powerOff();
    }
    return this.atr;
  }
}

export async function serveVpcd(card: SimCard, options: VpcdServeOptions = {}): Promise<VpcdHandle> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? VPCD_PORT_DEFAULT;
  const retry = options.reconnectDelayMs ?? VPCD_RECONNECT_DELAY_MS;
  const log = options.log ?? (() => undefined);
  const state = new VpcdCard(card, options.trace);
  let closing = false;
  let socket: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let waiters: (() => void)[] = [];

  const attach = (s: Socket): void => {
    socket = s;
    s.setNoDelay(true);
    const queue = new ByteQueue();
    s.on("data", (chunk: Buffer) => {
      queue.push(chunk);
      for (let frame = takeVpcdFrame(queue); frame; frame = takeVpcdFrame(queue)) {
        const answer = state.handle(frame);
        if (answer === null) {
          s.destroy(); // the card is gone; the close handler reinserts it
          return;
        }
        if (answer) s.write(encodeVpcdFrame(answer));
      }
    });
    s.on("error", (e) => log(`vpcd ${host}:${port}: ${e.message}`));
    s.on("close", () => {
      socket = undefined;
      state.disconnected();
      if (!closing) schedule();
    });
    for (const w of waiters) w();
    waiters = [];
    log(`vpcd: card inserted at ${host}:${port}`);
  };

  const attempt = async (): Promise<void> => {
    timer = undefined;
    if (closing) return;
    try {
      const s = await connectTcp(host, port);
      if (closing) s.destroy();
      else attach(s);
    } catch {
      schedule();
    }
  };
  const schedule = (): void => {
    if (!closing && !timer) timer = setTimeout(() => void attempt(), retry);
  };

  await attempt();
  return {
    host,
    port,
    connected: () => (socket ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    close: async () => {
      closing = true;
      clearTimeout(timer);
      socket?.destroy();
      state.disconnected();
      for (const w of waiters) w();
    },
  };
}
