/**
 * Targets: what a suite runs against. Every suite talks to `target.channel` (an
 * ApduChannel) only; a target may add a PowerControl and, when simulated, extras that have
 * no meaning on hardware (wear map, image digest, clock control, a fresh blank card).
 *
 *   sim:memory     a simulated Ukey on an in-memory NAND chip (blank at start)
 *   sim:PATH       a simulated Ukey kept in a NAND image file (created when absent)
 *   anything else  src/transport's openChannel(uri) (usbip://, vpcd://, serial:, pcsc:)
 */
import { CardMuteError } from "../src/cos/index.ts";
import { ChannelError, openChannel, type ApduChannel } from "../src/transport/index.ts";
import { toHex, type TraceEvent, type TraceSink, NULL_TRACE } from "../src/sim/index.ts";
import { ENDURANCE_CYCLES } from "../src/flash-store/index.ts";
import { SimDevice } from "./sim-device.ts";
import { SimPowerControl, type PowerControl } from "./power.ts";
import { simIssuerKeys, type IssuerKeys } from "./issuer-keys.ts";
import type { WearMap } from "./report.ts";
import { flashEvent } from "./campaign.ts";

export class TargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TargetError";
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Event sequence shared by everything that writes into one run's trace. */
export class RunTrace {
  seq = 0;
  constructor(readonly sink: TraceSink = NULL_TRACE) {}
  emit(e: DistributiveOmit<TraceEvent, "seq"> | TraceEvent): void {
    // the run header carries no sequence number (docs/trace-format.md)
    this.sink.emit(e.kind === "run" ? (e as TraceEvent) : ({ ...e, seq: this.seq++ } as TraceEvent));
  }
}

/** Simulator-only controls, behind an interface (hardware has none of them). */
export interface SimExtras {
  readonly device: SimDevice;
  wearMap(): WearMap;
  imageDigest(): string;
  /** Move the host's (and the secure clock's source) time forward. */
  advanceClock(ms: number): void;
  /** Replace the device by a blank one (factory state); false when the target keeps its image. */
  reset(): boolean;
}

export interface Target {
  readonly uri: string;
  readonly kind: "sim" | "hardware";
  readonly channel: ApduChannel;
  readonly power?: PowerControl;
  readonly sim?: SimExtras;
  readonly keys: IssuerKeys;
  close(): Promise<void>;
}

/** The channel of a simulated target: the card in this process, traced (APDUs and mutating flash ops). */
class SimChannel implements ApduChannel {
  private powered = false;
  constructor(private readonly holder: { device: SimDevice }, readonly target: string, private readonly trace: RunTrace) {}
  async powerOn(): Promise<Uint8Array> {
    const atr = this.holder.device.powerOn();
    this.powered = true;
    this.trace.emit({ kind: "power", state: "on", atr: toHex(atr) });
    return atr;
  }
  async transmit(command: Uint8Array): Promise<Uint8Array> {
    if (!this.powered) throw new ChannelError("NO_CARD", "card is not powered: call powerOn first");
    try {
      const r = this.holder.device.transmit(command);
      this.trace.emit({ kind: "apdu", command: toHex(command), response: toHex(r) });
      return r;
    } catch (error) {
      if (error instanceof CardMuteError) {
        this.powered = false;
        this.trace.emit({ kind: "apdu", command: toHex(command), response: "" });
        throw new ChannelError("NO_CARD", error.message);
      }
      throw error;
    }
  }
  async powerOff(): Promise<void> {
    this.holder.device.card.powerOff();
    this.powered = false;
    this.trace.emit({ kind: "power", state: "off" });
  }
  async close(): Promise<void> {
    if (this.powered) await this.powerOff();
  }
}

/** Wraps a hardware channel so its APDUs land in the trace. */
class TracedChannel implements ApduChannel {
  constructor(private readonly inner: ApduChannel, private readonly trace: RunTrace) {}
  get target(): string {
    return this.inner.target;
  }
  async powerOn(): Promise<Uint8Array> {
    const atr = await this.inner.powerOn();
    this.trace.emit({ kind: "power", state: "on", atr: toHex(atr) });
    return atr;
  }
  async transmit(command: Uint8Array): Promise<Uint8Array> {
    const r = await this.inner.transmit(command);
    this.trace.emit({ kind: "apdu", command: toHex(command), response: toHex(r) });
    return r;
  }
  async powerOff(): Promise<void> {
    await this.inner.powerOff();
    this.trace.emit({ kind: "power", state: "off" });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface OpenTargetOptions {
  seed: number;
  trace?: RunTrace;
  /** Hardware power switch (parsePowerSpec); simulated targets bring their own. */
  power?: PowerControl;
  /** Bureau-side keys for hardware (readIssuerKeys); the simulator's are built in. */
  keys?: IssuerKeys;
  /** How to open a non-sim URI; default src/transport's openChannel. */
  openChannel?: (uri: string) => Promise<ApduChannel>;
  /**
   * Where the virtual clock of a sim:IMAGE target starts (default HIL_START_SECONDS). An image
   * keeps its secure-clock checkpoint across runs, so a card issued at a later time would
   * rightly see an earlier start as a rolled-back clock: the CLI passes the wall clock.
   */
  imageClockStartMs?: number;
}

export async function openTarget(uri: string, options: OpenTargetOptions): Promise<Target> {
  const trace = options.trace ?? new RunTrace();
  if (typeof uri !== "string" || uri.trim() === "") throw new TargetError("--target needs a URI: sim:memory, sim:IMAGE-PATH, usbip://HOST:PORT, vpcd://..., serial:DEVICE");
  if (uri.startsWith("sim:")) {
    const where = uri.slice(4);
    if (where === "") throw new TargetError(`target "${uri}": say sim:memory or sim:PATH-TO-IMAGE`);
    const make = (): SimDevice => {
      try {
        return where === "memory" ? SimDevice.create({ seed: options.seed }) : SimDevice.image(where, { seed: options.seed, ...(options.imageClockStartMs !== undefined ? { startMs: options.imageClockStartMs } : {}) });
      } catch (error) {
        throw new TargetError(`target "${uri}": ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    const holder = { device: make() };
    const observe = () =>
      holder.device.onFlash((k, op) => {
        if (op.kind !== "read") trace.emit(flashEvent(0, k, op));
      });
    observe();
    const power = new SimPowerControl(() => holder.device, options.seed);
    const channel = new SimChannel(holder, uri, trace);
    const sim: SimExtras = {
      get device() {
        return holder.device;
      },
      wearMap: () => ({ eraseCounts: holder.device.eraseCounts(), badBlocks: holder.device.eraseCounts().flatMap((_, b) => (holder.device.chip.isFactoryBad(b) ? [b] : [])), endurance: ENDURANCE_CYCLES }),
      imageDigest: () => holder.device.imageDigest(),
      advanceClock: (ms) => holder.device.clock.advance(ms),
      reset: () => {
        if (where !== "memory") return false; // an image target keeps its state between runs
        holder.device = make();
        observe();
        return true;
      },
    };
    return { uri, kind: "sim", channel, power, sim, keys: options.keys ?? simIssuerKeys(), close: () => channel.close() };
  }
  const open = options.openChannel ?? ((u: string) => openChannel(u));
  if (!options.keys) throw new TargetError(`target "${uri}": a hardware target needs the vendor's issuer-key file (--issuer-keys FILE, format in docs/hil.md)`);
  let inner: ApduChannel;
  try {
    inner = await open(uri);
  } catch (error) {
    throw new TargetError(`target "${uri}": ${error instanceof Error ? error.message : String(error)}`);
  }
  const channel = new TracedChannel(inner, trace);
  return { uri, kind: "hardware", channel, ...(options.power ? { power: options.power } : {}), keys: options.keys, close: () => channel.close() };
}
