/**
 * A Ukey on a NAND chip: the FlashStore (ECC, CRC, two copies, atomic transactions,
 * rollover) keyed from the device secret in the MCU secure area, so the NAND holds only
 * ciphertext. After a power cut the card is mute; the next powerOn re-powers the chip and
 * re-mounts the store (which finishes or drops the torn transaction).
 */
import { hmacSm3 } from "../crypto/index.ts";
import { FlashStore, StoreError, openImage, createImage, type NandChip, type Geometry } from "../flash-store/index.ts";
import { DEVICE_SECRET_BYTES, type DeviceSecrets } from "./vault.ts";
import { UkeyCos, type UkeyOptions } from "./ukey.ts";

export interface FlashUkeyOptions extends Omit<UkeyOptions, "store" | "reopenStore" | "secrets" | "storeEncrypts"> {
  chip: NandChip;
  /** Default: the chip's MCU secure area (ChipSecrets). */
  secrets?: DeviceSecrets;
}

/**
 * The device secret in the chip's MCU secure area (not NAND): a flag byte 1, then the 32
 * secret bytes. The same layout as the harness's sim devices (hil/sim-device.ts), so an
 * image made by `ukeysim personalize` and a harness sim:IMAGE are the same kind of device.
 */
export class ChipSecrets implements DeviceSecrets {
  constructor(private readonly chip: NandChip) {}
  read(): Uint8Array | undefined {
    const area = this.chip.media.readSecure();
    return area[0] === SECRET_PRESENT ? area.slice(1, 1 + DEVICE_SECRET_BYTES) : undefined;
  }
  write(secret: Uint8Array): void {
    if (secret.length !== DEVICE_SECRET_BYTES) throw new RangeError(`device secret must be ${DEVICE_SECRET_BYTES} bytes`);
    const rec = new Uint8Array(1 + DEVICE_SECRET_BYTES);
    rec[0] = SECRET_PRESENT;
    rec.set(secret, 1);
    this.chip.media.writeSecure(0, rec);
  }
}

const SECRET_PRESENT = 1;

export interface FlashUkey {
  card: UkeyCos;
  chip: NandChip;
  secrets: DeviceSecrets;
  /** The store the card runs on now (a new one after each re-mount). */
  store(): FlashStore;
}

/** The FlashStore data key: HMAC-SM3(device secret, label), first 16 bytes. */
export function flashKeyFromSecret(secret: Uint8Array): Uint8Array {
  return hmacSm3(secret, new TextEncoder().encode("ukey-flash-data-key")).slice(0, 16);
}

function mountOrFormat(chip: NandChip, key: Uint8Array): FlashStore {
  try {
    return FlashStore.mount(chip, { key });
  } catch (error) {
    if (error instanceof StoreError && error.code === "BAD_IMAGE") return FlashStore.format(chip, { key });
    throw error;
  }
}

export function createUkeyOnFlash(o: FlashUkeyOptions): FlashUkey {
  const secrets = o.secrets ?? new ChipSecrets(o.chip);
  let secret = secrets.read();
  if (!secret) {
    secret = o.rng.fork("device-secret").bytes(DEVICE_SECRET_BYTES);
    secrets.write(secret);
  }
  const key = flashKeyFromSecret(secret);
  let store = mountOrFormat(o.chip, key);
  const card = new UkeyCos({
    ...o, store, secrets, storeEncrypts: true,
    reopenStore: () => {
      store.unmount(); // a power cycle: the old store's RAM serves the new mount
      o.chip.repower();
      store = FlashStore.mount(o.chip, { key });
      return store;
    },
  });
  return { card, chip: o.chip, secrets, store: () => store };
}

export interface ImageUkeyOptions extends Omit<FlashUkeyOptions, "chip" | "secrets"> {
  path: string;
  /** Create a new image (refuses to replace an existing file unless overwrite). */
  create?: boolean;
  overwrite?: boolean;
  geometry?: Geometry;
}

/**
 * A Ukey whose NAND and MCU secure area live in an image file, so it keeps its state
 * across processes (`ukeysim personalize --image`, `ukeysim apdu --target sim:IMAGE`).
 * Close the chip (`ukey.chip.close()`) when done.
 */
export function openUkeyImage(o: ImageUkeyOptions): FlashUkey {
  const chip = o.create ? createImage(o.path, { ...(o.geometry ? { geometry: o.geometry } : {}), overwrite: o.overwrite ?? false }) : openImage(o.path);
  try {
    return createUkeyOnFlash({ ...o, chip });
  } catch (error) {
    chip.close();
    throw error;
  }
}
