import { CardMuteError, type SimCard } from "../cos/index.ts";
import { ChannelError, type ApduChannel } from "./channel.ts";

/** The simplest channel: calls the simulated card in this process. */
export class InProcessChannel implements ApduChannel {
  private powered = false;
  constructor(private readonly card: SimCard, readonly target = "sim:memory") {}

  async powerOn(): Promise<Uint8Array> {
    const atr = this.card.powerOn();
    this.powered = true;
    return atr;
  }

  async transmit(command: Uint8Array): Promise<Uint8Array> {
    if (!this.powered) throw new ChannelError("NO_CARD", "card is not powered: call powerOn first");
    try {
      return this.card.process(command);
    } catch (error) {
      if (error instanceof CardMuteError) {
        this.powered = false;
        throw new ChannelError("NO_CARD", error.message);
      }
      throw error;
    }
  }

  async powerOff(): Promise<void> {
    this.card.powerOff();
    this.powered = false;
  }

  async close(): Promise<void> {
    if (this.powered) await this.powerOff();
  }
}
