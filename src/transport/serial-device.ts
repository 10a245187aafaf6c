/**
 * serveSerial: the device side of the serial framing, for a simulated Ukey on a serial
 * line (a pty pair in tests, a USB-serial adapter towards a host in the lab). The frame
 * logic (SerialCardLogic) is free of I/O so it is tested byte for byte.
 */
import type { SimCard } from "../cos/index.ts";
import { CardMuteError } from "../cos/index.ts";
import { NULL_TRACE, toHex, type TraceSink } from "../sim/index.ts";
import * as F from "./serial-frame.ts";
import { closeSerialPort, openSerialPort } from "./serial-port.ts";

export interface SerialServeOptions {
  path: string;
  baudRate?: number;
  trace?: TraceSink;
  log?: (line: string) => void;
}

export interface SerialHandle {
  readonly path: string;
  close(): Promise<void>;
}

const NO_PAYLOAD = new Uint8Array(0);

export class SerialCardLogic {
  private powered = false;
  private seq = 0;

  constructor(private readonly card: SimCard, private readonly trace: TraceSink = NULL_TRACE) {}

  /** The answer frame to one request frame. */
  handle(request: F.SerialFrame): F.SerialFrame {
    const reply = (type: number, payload: Uint8Array = NO_PAYLOAD): F.SerialFrame => ({ seq: request.seq, type, payload });
    switch (request.type) {
      case F.TYPE_POWER_ON:
      case F.TYPE_RESET: {
        if (this.powered) this.card.powerOff();
        const atr = this.card.powerOn();
        this.powered = true;
        this.trace.emit({ kind: "power", seq: this.seq++, state: "on", atr: toHex(atr) });
        return reply(F.TYPE_ATR, atr);
      }
      case F.TYPE_POWER_OFF:
        if (this.powered) this.card.powerOff();
        this.powered = false;
        this.trace.emit({ kind: "power", seq: this.seq++, state: "off" });
        return reply(F.TYPE_ACK);
      case F.TYPE_APDU:
        return this.apdu(request, reply);
      default:
        return reply(F.TYPE_ERROR, Uint8Array.of(F.ERROR_UNKNOWN_TYPE));
    }
  }

  private apdu(request: F.SerialFrame, reply: (type: number, payload?: Uint8Array) => F.SerialFrame): F.SerialFrame {
    if (!this.powered) return reply(F.TYPE_ERROR, Uint8Array.of(F.ERROR_NOT_POWERED));
    try {
      const response = this.card.process(request.payload);
      this.trace.emit({ kind: "apdu", seq: this.seq++, command: toHex(request.payload), response: toHex(response) });
      return reply(F.TYPE_RESPONSE, response);
    } catch (error) {
      if (!(error instanceof CardMuteError)) throw error;
      this.powered = false;
      this.trace.emit({ kind: "apdu", seq: this.seq++, command: toHex(request.payload), response: "" });
      return reply(F.TYPE_ERROR, Uint8Array.of(F.ERROR_CARD_MUTE));
    }
  }
}

export async function serveSerial(card: SimCard, options: SerialServeOptions): Promise<SerialHandle> {
  const port = await openSerialPort(options.path, options.baudRate ?? F.DEFAULT_BAUD_RATE);
  const logic = new SerialCardLogic(card, options.trace);
  const deframer = new F.SerialDeframer();
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const now = () => performance.now() - started;
  const expiry = setInterval(() => {
    const r = deframer.expire(now());
    for (const frame of r.frames) port.write(F.encodeSerialFrame(logic.handle(frame)));
  }, F.INTER_BYTE_TIMEOUT_MS);
  port.on("data", (chunk: Buffer) => {
    const r = deframer.push(chunk, now());
    if (r.dropped) log(`serial ${options.path}: dropped ${r.dropped} garbage byte(s)`);
    for (const bad of r.corrupt) port.write(F.encodeSerialFrame({ seq: bad.seq, type: F.TYPE_ERROR, payload: Uint8Array.of(F.ERROR_BAD_FRAME) }));
    for (const frame of r.frames) port.write(F.encodeSerialFrame(logic.handle(frame)));
  });
  port.on("error", (e: Error) => log(`serial ${options.path}: ${e.message}`));
  return {
    path: options.path,
    close: async () => {
      clearInterval(expiry);
      await closeSerialPort(port);
    },
  };
}
