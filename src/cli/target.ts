/**
 * Target URIs for the host commands (issuer, diagnose). Until src/transport exports a
 * general `openChannel(uri)`, this resolver handles the simulated Ukey:
 *   sim:IMAGE  the virtual Ukey in an image file (from `ukeysim personalize --image`),
 *              opened in this process behind an InProcessChannel; its state persists.
 */
import { existsSync } from "node:fs";
import { openUkeyImage } from "../cos/index.ts";
import { InProcessChannel, ChannelError, type ApduChannel } from "../transport/index.ts";
import { Rng, type Clock } from "../sim/index.ts";

export interface OpenedTarget {
  channel: ApduChannel;
  close(): Promise<void>;
}

export const WALL_CLOCK: Clock = { now: () => Date.now() };

/** Opens a target URI; ChannelError BAD_TARGET / NO_CARD when it cannot. */
export function openTarget(uri: string, seed: number = Date.now()): OpenedTarget {
  const m = /^sim:(.+)$/.exec(uri);
  if (!m) throw new ChannelError("BAD_TARGET", `target must be sim:IMAGE (other schemes come with src/transport's openChannel), got "${uri}"`);
  const path = m[1] as string;
  if (!existsSync(path)) throw new ChannelError("NO_CARD", `no Ukey image at ${path} (create one with: ukeysim personalize --image ${path})`);
  const ukey = openUkeyImage({ path, clock: WALL_CLOCK, rng: new Rng(seed) });
  const channel = new InProcessChannel(ukey.card, uri);
  return {
    channel,
    async close() {
      try {
        await channel.close();
      } finally {
        ukey.chip.close();
      }
    },
  };
}
