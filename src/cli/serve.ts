/**
 * ukeysim serve --image key.img [--usbip [HOST:]PORT] [--vpcd HOST:PORT] [--serial PATH]
 *               [--baud N] [--trace FILE]
 *
 * Serves one simulated Ukey over any combination of transports until SIGINT/SIGTERM.
 * The card comes from a factory: by default `--image FILE` opens that Ukey image (made by
 * `ukeysim personalize`) and `--image memory` a blank card in memory; tests inject theirs.
 * Time is the wall clock, as DESIGN.md says for serve mode.
 */
import { type Command, InvalidArgumentError } from "commander";
import { createUkey, openUkeyImage, type SimCard } from "../cos/index.ts";
import { ModelStore } from "../flash-store/index.ts";
import { FileTrace, NULL_TRACE, parseSeed, Rng, type Clock, type TraceSink } from "../sim/index.ts";
import { serveSerial, serveUsbip, serveVpcd, VPCD_PORT_DEFAULT, VPCD_QUICKACK_ADDRESS, quickAckRouteCommand } from "../transport/index.ts";

export const USBIP_PORT = 3240;
export const DEFAULT_HOST = "127.0.0.1";

export interface ServedCard {
  card: SimCard;
  /** Release what backs the card (the image file). */
  close(): void;
  /** True when the card writes its own APDU and power events to the trace (the chip OS does). */
  traces?: boolean;
}

export type CardFactory = (image: string, trace: TraceSink, seed: number) => ServedCard | Promise<ServedCard>;

const WALL_CLOCK: Clock = { now: () => Date.now() };
export const MEMORY_IMAGE = "memory";

export interface ServeOptions {
  image: string;
  usbip?: { host: string; port: number };
  vpcd?: { host: string; port: number };
  serial?: string;
  baud?: number;
  trace?: string;
}

export interface Serving {
  lines: string[];
  close(): Promise<void>;
}

export const cardFromImage: CardFactory = (image, trace, seed) => {
  const rng = new Rng(seed);
  if (image === MEMORY_IMAGE) return { card: createUkey({ store: new ModelStore(), clock: WALL_CLOCK, rng, trace }), close: () => undefined, traces: true };
  const ukey = openUkeyImage({ path: image, clock: WALL_CLOCK, rng, trace });
  return { card: ukey.card, close: () => ukey.chip.close(), traces: true };
};

/** "[HOST:]PORT" or "HOST:PORT" into parts. */
export function parseHostPort(text: string, defaultPort?: number): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})?$/.exec(text);
  const port = m?.[2] !== undefined ? Number(m[2]) : defaultPort;
  if (!m || port === undefined || port < 1 || port > 65535 || (m[1] === undefined && m[2] === undefined)) {
    throw new RangeError(`"${text}" is not [HOST:]PORT with a port in 1..65535`);
  }
  return { host: (m[1] ?? DEFAULT_HOST).replace(/^\[|\]$/g, ""), port };
}

function parseBaud(text: string): number {
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) throw new InvalidArgumentError(`"${text}" is not a baud rate`);
  return Number(text);
}

/** Start every requested transport on one card; if one fails, the others are closed again. */
export async function startServing(card: SimCard, options: ServeOptions, trace: TraceSink = NULL_TRACE): Promise<Serving> {
  const closers: (() => Promise<void>)[] = [];
  const lines: string[] = [];
  try {
    if (options.usbip) {
      const h = await serveUsbip(card, { host: options.usbip.host, port: options.usbip.port, device: { trace } });
      closers.push(() => h.close());
      lines.push(`usbip   ${h.target}   (usbip --tcp-port ${h.port} list -r ${h.host}; usbip --tcp-port ${h.port} attach -r ${h.host} -b 1-1)`);
    }
    if (options.vpcd) {
      const h = await serveVpcd(card, { ...options.vpcd, trace, log: (l) => console.error(l) });
      closers.push(() => h.close());
      lines.push(`vpcd    card side connecting to ${options.vpcd.host}:${options.vpcd.port} (reader "Virtual PCD 00 00" in pcscd)`);
      if (options.vpcd.host !== VPCD_QUICKACK_ADDRESS) {
        lines.push(`        tip: vpcd costs ~40 ms per APDU in delayed ACKs; as root: ${quickAckRouteCommand().join(" ")}, then --vpcd ${VPCD_QUICKACK_ADDRESS}:${options.vpcd.port}`);
      }
    }
    if (options.serial) {
      const h = await serveSerial(card, { path: options.serial, baudRate: options.baud, trace, log: (l) => console.error(l) });
      closers.push(() => h.close());
      lines.push(`serial  ${options.serial} at ${options.baud ?? "115200"} baud`);
    }
  } catch (error) {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    throw error;
  }
  return { lines, close: async () => void (await Promise.all(closers.map((c) => c()))) };
}

export function registerServe(program: Command, makeCard: CardFactory = cardFromImage): void {
  program
    .command("serve")
    .description("serve one simulated Ukey over USB/IP, vpcd (PC/SC) and/or a serial line until Ctrl-C")
    .requiredOption("--image <file>", `the Ukey image file (its state persists there), or "${MEMORY_IMAGE}" for a blank card`)
    .option("--usbip [host:port]", `export over USB/IP (default ${DEFAULT_HOST}:${USBIP_PORT})`)
    .option("--vpcd <host:port>", `connect the card to pcscd's vpcd (usually ${DEFAULT_HOST}:${VPCD_PORT_DEFAULT})`)
    .option("--serial <path>", "serve the serial framing on a tty or pty")
    .option("--baud <n>", "serial baud rate", parseBaud)
    .option("--trace <file>", "write a JSON-lines trace of every APDU and power event")
    .option("--seed <n>", "seed of the card's RNG", "1")
    .action(async (raw: { image: string; usbip?: string | boolean; vpcd?: string; serial?: string; baud?: number; trace?: string; seed: string }) => {
      const options: ServeOptions = {
        image: raw.image,
        usbip: raw.usbip === undefined ? undefined : parseHostPort(typeof raw.usbip === "string" ? raw.usbip : String(USBIP_PORT), USBIP_PORT),
        vpcd: raw.vpcd === undefined ? undefined : parseHostPort(raw.vpcd, VPCD_PORT_DEFAULT),
        serial: raw.serial,
        baud: raw.baud,
        trace: raw.trace,
      };
      if (!options.usbip && !options.vpcd && !options.serial) throw new RangeError("serve: give at least one of --usbip, --vpcd, --serial");
      const trace = options.trace ? new FileTrace(options.trace) : NULL_TRACE;
      const served = await makeCard(options.image, trace, parseSeed(raw.seed));
      const card = served.card;
      let serving: Serving;
      try {
        // The chip OS writes the APDU and power events itself; the transports would repeat them.
        serving = await startServing(card, options, served.traces ? NULL_TRACE : trace);
      } catch (error) {
        served.close();
        throw error;
      }
      console.log(`ukeysim serve: ${options.image}`);
      for (const line of serving.lines) console.log(`  ${line}`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          console.log(`ukeysim serve: ${signal}, shutting down`);
          resolve();
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
      await serving.close();
      card.powerOff();
      served.close();
    });
}
