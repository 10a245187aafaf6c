/**
 * The simulated card's face, in the manner of vsmartcard's vicc: a card is
 * powerOn / process(apdu) / powerOff. Every device-side transport wraps one of these.
 *
 * process() takes one command APDU (ISO 7816-4, short or extended) and returns the
 * response data followed by SW1 SW2. It never throws for bad input: a malformed APDU gets
 * a status word. It throws `CardMuteError` only when the card stops answering, i.e.
 * its power was cut in the middle of the command (the flash chip lost power).
 */
export interface SimCard {
  powerOn(): Uint8Array;
  process(apdu: Uint8Array): Uint8Array;
  powerOff(): void;
}

/** The card lost power mid-command and gave no answer; re-power it to go on. */
export class CardMuteError extends Error {
  constructor(message = "card is mute: power was lost during the command") {
    super(message);
    this.name = "CardMuteError";
  }
}
