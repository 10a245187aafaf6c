/**
 * ReconnectingChannel: a channel that survives its link. When the device resets, is
 * unplugged or loses power, the current operation fails (DISCONNECTED, or NO_CARD for a
 * mute card) as it must; the next powerOn opens the link again, as a host would after
 * re-enumeration. Nothing is retried behind the caller's back: a command may have reached
 * the card before the link died, and only the caller knows whether it may be repeated.
 */
import { ChannelError, type ApduChannel } from "./channel.ts";

export class ReconnectingChannel implements ApduChannel {
  private current: ApduChannel | undefined;
  private closed = false;

  constructor(readonly target: string, private readonly open: () => Promise<ApduChannel>, initial?: ApduChannel) {
    this.current = initial;
  }

  async powerOn(): Promise<Uint8Array> {
    if (this.closed) throw new ChannelError("DISCONNECTED", `${this.target}: channel is closed`);
    if (!this.current) this.current = await this.open();
    return this.watch(this.current.powerOn());
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    return this.watch(this.live().transmit(command));
  }

  async powerOff(): Promise<void> {
    if (!this.current) return;
    await this.watch(this.current.powerOff());
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    this.current = undefined;
    await c?.close();
  }

  private live(): ApduChannel {
    if (this.closed) throw new ChannelError("DISCONNECTED", `${this.target}: channel is closed`);
    if (!this.current) throw new ChannelError("DISCONNECTED", `${this.target}: link lost; call powerOn to reconnect`);
    return this.current;
  }

  private async watch<T>(operation: Promise<T>): Promise<T> {
    try {
      return await operation;
    } catch (error) {
      if (error instanceof ChannelError && error.code === "DISCONNECTED") {
        const dead = this.current;
        this.current = undefined;
        await dead?.close().catch(() => undefined);
      }
      throw error;
    }
  }
}
