/**
 * Target URIs for the host commands (issuer, diagnose), through src/transport's
 * openChannel: usbip://, pcsc:, serial:, usb: as the transport opens them, and
 *   sim:IMAGE  the virtual Ukey in an image file (from `ukeysim personalize --image`),
 *              run in this process behind an InProcessChannel; its state persists.
 */
import { existsSync } from "node:fs";
import { openUkeyImage } from "../cos/index.ts";
import { openChannel, ChannelError, type ApduChannel } from "../transport/index.ts";
import { Rng, type Clock } from "../sim/index.ts";

export interface OpenedTarget {
  channel: ApduChannel;
  close(): Promise<void>;
}

export const WALL_CLOCK: Clock = { now: () => Date.now() };

/** Opens a target URI; ChannelError BAD_TARGET / NO_CARD / UNAVAILABLE when it cannot. */
export async function openTarget(uri: string, seed: number = Date.now()): Promise<OpenedTarget> {
  let chip: { close(): void } | undefined;
  const channel = await openChannel(uri, {
    simCard: (image) => {
      if (!existsSync(image)) throw new ChannelError("NO_CARD", `no Ukey image at ${image} (create one with: ukeysim personalize --image ${image})`);
      const ukey = openUkeyImage({ path: image, clock: WALL_CLOCK, rng: new Rng(seed) });
      chip = ukey.chip;
      return ukey.card;
    },
  });
  return {
    channel,
    async close() {
      try {
        await channel.close();
      } finally {
        chip?.close();
      }
    },
  };
}
