/**
 * The seam of hardware-in-the-loop: everything above the transport talks to a Ukey only
 * through an ApduChannel, so the host, the suites and the property tests cannot tell the
 * simulator from a real device.
 */
export interface ApduChannel {
  /** Power the card (or reset it) and return its ATR. */
  powerOn(): Promise<Uint8Array>;
  /** Send one command APDU; resolve with response data followed by SW1 SW2. */
  transmit(command: Uint8Array): Promise<Uint8Array>;
  powerOff(): Promise<void>;
  /** Release the connection (socket, port, reader). The channel is unusable afterwards. */
  close(): Promise<void>;
  /** What this channel reaches, as a target URI (sim:..., usbip://..., pcsc:...). */
  readonly target: string;
}

export type ChannelErrorCode =
  | "NO_CARD"        // nothing answers: card absent, mute or unpowered
  | "TIMEOUT"        // the device did not answer in time
  | "DISCONNECTED"   // the link went away (socket closed, port gone, device reset)
  | "PROTOCOL"       // the peer spoke malformed frames
  | "UNAVAILABLE"    // the subsystem is missing (no USB, no pcscd, no serial port)
  | "BAD_TARGET";    // the target URI is malformed or names an unknown scheme

export class ChannelError extends Error {
  constructor(readonly code: ChannelErrorCode, message: string) {
    super(message);
    this.name = "ChannelError";
  }
}
