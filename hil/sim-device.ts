/**
 * The simulated Ukey as the harness drives it: the COS (src/cos) on a FlashStore over a
 * NAND chip, with a virtual clock and the MCU secure area. The chip is what makes power
 * cuts, forks (campaigns) and the wear map possible; everything else reaches the card
 * through APDUs only.
 */
import { existsSync } from "node:fs";
import { createUkey, flashKeyFromSecret, ChipSecrets, DEVICE_SECRET_BYTES, type UkeyCos } from "../src/cos/index.ts";
import { FlashStore, NandChip, SMALL_GEOMETRY, DecryptCache, createImage, openImage, type Geometry, type NandOp } from "../src/flash-store/index.ts";
import { Rng, VirtualClock, type TraceSink } from "../src/sim/index.ts";
import { sm3 } from "../src/crypto/index.ts";
import { concatBytes } from "../src/tax/index.ts";

/** 2026-01-01T00:00:00Z: the secure clock the bureau sets at issuance in harness runs. */
export const HIL_START_SECONDS = 1_767_225_600;
/** Default serial of a simulated Ukey (the bureau derives the card key from it). */
export const SIM_SERIAL = "UK00000000000001";
/** Geometry of simulated targets: 64 blocks x 32 pages x 2 KiB = 4 MiB, room for hundreds of invoices. */
export const SIM_GEOMETRY: Geometry = Object.freeze({ pageBytes: 2048, spareBytes: 64, pagesPerBlock: 32, blocks: 64 });
/** Campaign geometry: small, so a fork, a tear and a remount cost microseconds. */
export const CAMPAIGN_GEOMETRY: Geometry = SMALL_GEOMETRY;

export interface SimDeviceOptions {
  seed: number;
  geometry?: Geometry;
  serial?: string;
  startMs?: number;
  trace?: TraceSink;
  /** Memo shared by forks of one campaign (decryption of unchanged pages). */
  cache?: DecryptCache;
}

/** The device secret of `chip`, made from the seed on first use. */
function deviceSecret(chip: NandChip, seed: number): Uint8Array {
  const secrets = new ChipSecrets(chip);
  let secret = secrets.read();
  if (!secret) {
    secret = new Rng(seed).fork("device-secret").bytes(DEVICE_SECRET_BYTES);
    secrets.write(secret);
  }
  return secret;
}

export class SimDevice {
  readonly card: UkeyCos;
  /** Listeners of every flash operation (power control, trace); see onFlash. */
  private readonly flashListeners = new Set<(index: number, op: NandOp) => void>();
  private constructor(
    readonly seed: number,
    readonly chip: NandChip,
    readonly clock: VirtualClock,
    readonly serial: string,
    readonly storeKey: Uint8Array,
    readonly decryptCache: DecryptCache,
    store: FlashStore,
    trace: TraceSink | undefined,
    rngSalt: number,
  ) {
    this.card = createUkey({
      store, clock, rng: new Rng(seed, rngSalt), secrets: new ChipSecrets(chip), serial,
      ...(trace ? { trace } : {}),
      reopenStore: () => this.mount(),
    });
  }

  /** Listen to flash operations (index, op) before they apply; returns the unsubscribe. */
  onFlash(listener: (index: number, op: NandOp) => void): () => void {
    if (this.flashListeners.size === 0) this.chip.setObserver((k, op) => {
      for (const l of [...this.flashListeners]) l(k, op);
    });
    this.flashListeners.add(listener);
    return () => {
      this.flashListeners.delete(listener);
      if (this.flashListeners.size === 0) this.chip.setObserver(null);
    };
  }

  /** A blank (factory-state) Ukey on a freshly formatted chip. */
  static create(options: SimDeviceOptions): SimDevice {
    const chip = NandChip.memory({ geometry: options.geometry ?? SIM_GEOMETRY });
    return SimDevice.onNewOrExisting(chip, options, true);
  }

  /**
   * A Ukey kept in an image file (sim:IMAGE): opened when the file exists (its state,
   * secure area included, survives between runs), else created and formatted.
   */
  static image(path: string, options: SimDeviceOptions): SimDevice {
    const fresh = !existsSync(path);
    const chip = fresh ? createImage(path, { geometry: options.geometry ?? SIM_GEOMETRY }) : openImage(path);
    return SimDevice.onNewOrExisting(chip, options, fresh);
  }

  private static onNewOrExisting(chip: NandChip, options: SimDeviceOptions, fresh: boolean): SimDevice {
    const key = flashKeyFromSecret(deviceSecret(chip, options.seed));
    const cache = options.cache ?? new DecryptCache();
    const store = fresh ? FlashStore.format(chip, { key, cache }) : FlashStore.mount(chip, { key, cache });
    const clock = new VirtualClock(options.startMs ?? HIL_START_SECONDS * 1000);
    return new SimDevice(options.seed, chip, clock, options.serial ?? SIM_SERIAL, key, cache, store, options.trace, 0);
  }

  /**
   * The same device on another chip (a fork, possibly torn): same secure area (it is in
   * the chip), same clock reading, the store mounted as at power-on. `salt` varies the COS rng.
   */
  onChip(chip: NandChip, salt = 1): SimDevice {
    const store = FlashStore.mount(chip, { key: this.storeKey, cache: this.decryptCache });
    return new SimDevice(this.seed, chip, new VirtualClock(this.clock.now()), this.serial, this.storeKey, this.decryptCache, store, undefined, salt);
  }

  /** A copy-on-write fork of the whole device (chip, secure area, clock). */
  fork(salt = 1): SimDevice {
    return this.onChip(this.chip.fork(), salt);
  }

  /** Remount the store on this device's chip (power-on after a cut). */
  mount(): FlashStore {
    this.chip.repower();
    return FlashStore.mount(this.chip, { key: this.storeKey, cache: this.decryptCache });
  }

  powerOn(): Uint8Array {
    return this.card.powerOn();
  }

  /** One APDU, synchronously (throws CardMuteError when the power was cut mid-command). */
  transmit(apdu: Uint8Array): Uint8Array {
    return this.card.process(apdu);
  }

  /** SM3 digest of the chip image: every page (data + spare) and every erase count. */
  imageDigest(): string {
    const g = this.chip.geometry;
    const parts: Uint8Array[] = [];
    const head = new Uint8Array(4 * g.blocks);
    const view = new DataView(head.buffer);
    for (let b = 0; b < g.blocks; b++) view.setUint32(4 * b, this.chip.media.eraseCount(b));
    parts.push(head);
    for (let b = 0; b < g.blocks; b++) {
      for (let p = 0; p < g.pagesPerBlock; p++) {
        const page = this.chip.media.readPage(b, p);
        if (page) parts.push(Uint8Array.of(b >> 8, b & 0xff, p), page);
      }
    }
    return Buffer.from(sm3(concatBytes(...parts))).toString("hex");
  }

  eraseCounts(): number[] {
    return Array.from({ length: this.chip.geometry.blocks }, (_, b) => this.chip.eraseCount(b));
  }
}

export function isMutating(op: NandOp): boolean {
  return op.kind !== "read";
}
