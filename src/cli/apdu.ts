/**
 * ukeysim apdu --target sim:IMAGE|sim:memory [HEX ...]: a scriptor-style console. APDUs
 * come from the arguments or stdin, one hex APDU a line; `#` starts a comment; `reset`
 * re-powers the card, `power off` / `power on` switch it. Each response is printed with
 * its status word and meaning. With sim:IMAGE every change lands in the image file.
 */
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { createUkey, openUkeyImage, type UkeyCos } from "../cos/index.ts";
import { ModelStore } from "../flash-store/index.ts";
import { fromHex, parseSeed, Rng, toHex, type Clock } from "../sim/index.ts";
import { describeSw, hexSw, splitResponse } from "../tax/index.ts";

const WALL_CLOCK: Clock = { now: () => Date.now() };

export type ScriptLine = { kind: "apdu"; bytes: Uint8Array } | { kind: "reset" } | { kind: "off" } | { kind: "on" } | { kind: "skip" } | { kind: "error"; message: string };

/** One console line: an APDU in hex (spaces allowed), a command, a comment or blank. */
export function parseScriptLine(line: string): ScriptLine {
  const text = line.replace(/#.*/, "").trim().toLowerCase();
  if (text === "") return { kind: "skip" };
  if (text === "reset") return { kind: "reset" };
  if (text === "power off") return { kind: "off" };
  if (text === "power on") return { kind: "on" };
  try {
    const bytes = fromHex(text);
    if (bytes.length < 4) return { kind: "error", message: `an APDU has at least 4 bytes: "${line.trim()}"` };
    return { kind: "apdu", bytes };
  } catch {
    return { kind: "error", message: `not hex, and not reset / power off / power on: "${line.trim()}"` };
  }
}

const spaced = (b: Uint8Array) => toHex(b).toUpperCase().replace(/(..)(?!$)/g, "$1 ");

class Console {
  private powered = false;
  failures = 0;
  constructor(private readonly card: UkeyCos) {}

  on(): void {
    console.log(`ATR: ${spaced(this.card.powerOn())}`);
    this.powered = true;
  }
  off(): void {
    this.card.powerOff();
    this.powered = false;
    console.log("power off");
  }
  run(line: string): void {
    const l = parseScriptLine(line);
    switch (l.kind) {
      case "skip": return;
      case "error": this.failures++; console.log(`! ${l.message}`); return;
      case "reset": if (this.powered) this.card.powerOff(); this.on(); return;
      case "off": this.off(); return;
      case "on": this.on(); return;
      case "apdu": break;
    }
    console.log(`> ${spaced(l.bytes)}`);
    if (!this.powered) {
      this.failures++;
      console.log("! card is not powered: send \"power on\" or \"reset\"");
      return;
    }
    try {
      const { data, sw } = splitResponse(this.card.process(l.bytes));
      if (data.length) console.log(`< ${spaced(data)}`);
      console.log(`< ${hexSw(sw)} ${describeSw(sw)}`);
    } catch (error) {
      this.failures++;
      this.powered = false;
      console.log(`! ${(error as Error).message}`);
    }
  }
}

export function registerApdu(program: Command): void {
  program
    .command("apdu")
    .description("send APDUs to a virtual Ukey (scriptor-style): from arguments or stdin, one hex APDU a line, # comments, reset / power off / power on")
    .requiredOption("--target <uri>", "sim:IMAGE (an image from personalize) or sim:memory (a blank card)")
    .option("--seed <n>", "seed of the card's RNG", "1")
    .argument("[apdu...]", "APDUs in hex; read stdin when none")
    .action(async (apdus: string[], o: { target: string; seed: string }) => {
      const m = /^sim:(.+)$/.exec(o.target);
      if (!m) throw new Error(`target must be sim:IMAGE or sim:memory, got "${o.target}"`);
      const rng = new Rng(parseSeed(o.seed));
      const image = m[1] === "memory" ? undefined : openUkeyImage({ path: m[1] as string, clock: WALL_CLOCK, rng });
      const card = image ? image.card : createUkey({ store: new ModelStore(), clock: WALL_CLOCK, rng });
      const con = new Console(card);
      try {
        con.on();
        if (apdus.length) for (const a of apdus) con.run(a);
        else for await (const line of createInterface({ input: process.stdin })) con.run(line);
        card.powerOff();
      } finally {
        image?.chip.close();
      }
      if (con.failures) process.exitCode = 1;
    });
}
