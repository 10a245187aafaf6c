/**
 * A Ukey on a NAND chip: the FlashStore (ECC, CRC, two copies, atomic transactions,
 * rollover) keyed from the device secret in the MCU secure area, so the NAND holds only
 * ciphertext. After a power cut the card is mute; the next powerOn re-powers the chip and
 * re-mounts the store (which finishes or drops the torn transaction).
 */
import { hmacSm3 } from "../crypto/index.ts";
import { FlashStore, StoreError, type NandChip } from "../flash-store/index.ts";
import { MemorySecrets, DEVICE_SECRET_BYTES, type DeviceSecrets } from "./vault.ts";
import { UkeyCos, type UkeyOptions } from "./ukey.ts";

export interface FlashUkeyOptions extends Omit<UkeyOptions, "store" | "reopenStore" | "secrets" | "storeEncrypts"> {
  chip: NandChip;
  secrets?: DeviceSecrets;
}

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
  const secrets = o.secrets ?? new MemorySecrets();
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
      o.chip.repower();
      store = FlashStore.mount(o.chip, { key });
      return store;
    },
  });
  return { card, chip: o.chip, secrets, store: () => store };
}
