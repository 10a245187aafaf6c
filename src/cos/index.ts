/**
 * Public face of src/cos: the simulated Ukey (a SimCard) and what tests and the harness
 * need to drive it and inject faults.
 */
import { UkeyCos, type UkeyOptions } from "./ukey.ts";
import { openUkeyImage, type ImageUkeyOptions } from "./flash-ukey.ts";

export { CardMuteError, type SimCard } from "./card.ts";
export { UkeyCos, ATR, MAX_CHAIN_BYTES, MAX_CERT_BYTES, type UkeyOptions, type CardData } from "./ukey.ts";
export { MemorySecrets, Vault, DEVICE_SECRET_BYTES, type DeviceSecrets } from "./vault.ts";
export { RT, LifeCycle, COS_VERSION, encodeCounters, decodeCounters, type Counters } from "./records.ts";
export { ISSUE_RULES, LockReason, StateCode, ONLINE_FRESH_SECONDS, taxMachine, stateCode, lockReason } from "./tax-machine.ts";
export { MAX_CONFIRM_PER_TX } from "./tax-commands.ts";
export { createUkeyOnFlash, openUkeyImage, flashKeyFromSecret, ChipSecrets, type FlashUkey, type FlashUkeyOptions, type ImageUkeyOptions } from "./flash-ukey.ts";

/**
 * Make a Ukey. `store` is any RecordStore (ModelStore in memory, FlashStore over a NAND
 * chip); `secrets` is the MCU secure area holding the storage key. With `image` instead,
 * the card lives in an image file (created when `create` is set): NAND and secure area
 * persist across processes; `card.close()` releases the file. A new card is blank
 * (factory state, transport key FACTORY_ISSUER_KEY) until personalized.
 */
export function createUkey(options: UkeyOptions | (Omit<ImageUkeyOptions, "path"> & { image: string })): UkeyCos {
  if (!("image" in options)) return new UkeyCos(options);
  const { image, ...rest } = options;
  const ukey = openUkeyImage({ ...rest, path: image });
  ukey.card.onClose(() => ukey.chip.close());
  return ukey.card;
}
