/**
 * PowerControl: how the harness cuts and restores a target's power. Simulated targets cut
 * at a chosen flash operation; real ones switch USB port power with uhubctl (spawned) or a
 * serial relay. After a cut the suites re-power the device and judge it through APDUs only.
 */
import { spawnSync } from "node:child_process";
import { openSync, writeSync, closeSync } from "node:fs";
import { Rng } from "../src/sim/index.ts";
import type { NandChip, NandOp } from "../src/flash-store/index.ts";

/** What the simulated power control needs of a device: its chip and a flash listener hub. */
export interface FlashDevice {
  readonly chip: NandChip;
  onFlash(listener: (index: number, op: NandOp) => void): () => void;
}

export class PowerControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PowerControlError";
  }
}

export interface PowerControl {
  readonly kind: "sim" | "uhubctl" | "relay";
  /**
   * Arrange a cut during the next command: the simulator cuts at its `n`-th mutating flash
   * operation from now; hardware cuts `n` milliseconds after the command is sent.
   */
  armCut(n: number): void;
  /** Called by the harness right after it sends the command (hardware: starts the timer). */
  commandSent(): Promise<void>;
  /** True when the armed cut happened (the simulator knows; hardware assumes it did). */
  cutHappened(): boolean;
  /** Power back on (after a cut or an explicit off). */
  restore(): Promise<void>;
  /** Cut now. */
  off(): Promise<void>;
}

/** Cuts a simulated chip at its n-th mutating operation from now (the torn op is seeded). */
export class SimPowerControl implements PowerControl {
  readonly kind = "sim" as const;
  private unsubscribe: (() => void) | undefined;
  armedAt = -1;
  constructor(private readonly device: () => FlashDevice, private readonly seed: number) {}

  armCut(n: number): void {
    const d = this.device();
    let seen = 0;
    this.unsubscribe?.();
    this.unsubscribe = d.onFlash((k, op) => {
      if (op.kind === "read") return;
      if (seen++ === n) {
        d.chip.armPowerCut(k, new Rng(this.seed, k));
        this.armedAt = k;
        this.unsubscribe?.();
        this.unsubscribe = undefined;
      }
    });
  }
  async commandSent(): Promise<void> {}
  cutHappened(): boolean {
    return this.device().chip.poweredOff;
  }
  async restore(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.device().chip.disarmPowerCut();
    this.armedAt = -1;
    // the card re-mounts and re-powers the chip at its next powerOn
  }
  async off(): Promise<void> {
    const chip = this.device().chip;
    chip.armPowerCut(chip.opCount, new Rng(this.seed, chip.opCount));
  }
}

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 15_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") throw new PowerControlError(`${command} is not installed: install it (e.g. apt-get install ${command}) or use another --power`);
  if (r.error) throw new PowerControlError(`${command} failed: ${r.error.message}`);
  if (r.status !== 0) throw new PowerControlError(`${command} ${args.join(" ")} exited with ${r.status}: ${(r.stderr || r.stdout).trim()}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Time a re-powered USB token needs to enumerate and answer again. */
const REPOWER_SETTLE_MS = 1500;
const UHUBCTL_MAX_PORT = 32;

/**
 * A hardware power switch: a cut is timed, `n` milliseconds after the command is sent
 * (hardware cannot see flash operations). Subclasses only switch the power.
 */
abstract class TimedCutPowerControl implements PowerControl {
  abstract readonly kind: "uhubctl" | "relay";
  private delayMs = -1;
  protected abstract switchPower(on: boolean): void;
  armCut(n: number): void {
    this.delayMs = n;
  }
  async commandSent(): Promise<void> {
    if (this.delayMs < 0) return;
    await sleep(this.delayMs);
    await this.off();
  }
  cutHappened(): boolean {
    return this.delayMs >= 0;
  }
  async off(): Promise<void> {
    this.switchPower(false);
  }
  async restore(): Promise<void> {
    this.delayMs = -1;
    this.switchPower(true);
    await sleep(REPOWER_SETTLE_MS);
  }
}

/** USB port power through uhubctl: `uhubctl -l LOCATION -p PORT -a off|on`. */
export class UhubctlPowerControl extends TimedCutPowerControl {
  readonly kind = "uhubctl" as const;
  constructor(readonly location: string, readonly port: number, private readonly command = "uhubctl") {
    super();
    if (!/^[0-9][0-9.-]*$/.test(location)) throw new PowerControlError(`uhubctl hub location must look like 1-1.2, got "${location}"`);
    if (!Number.isInteger(port) || port < 1 || port > UHUBCTL_MAX_PORT) throw new PowerControlError(`uhubctl port must be 1..${UHUBCTL_MAX_PORT}, got ${port}`);
  }
  protected switchPower(on: boolean): void {
    run(this.command, ["-l", this.location, "-p", String(this.port), "-a", on ? "on" : "off"]);
  }
}

/** A serial relay board: writes the configured off/on byte strings to a tty. */
export class SerialRelayPowerControl extends TimedCutPowerControl {
  readonly kind = "relay" as const;
  constructor(readonly device: string, private readonly offBytes = Uint8Array.of(0xa0, 0x01, 0x01, 0xa2), private readonly onBytes = Uint8Array.of(0xa0, 0x01, 0x00, 0xa1)) {
    super();
  }
  protected switchPower(on: boolean): void {
    let fd: number;
    try {
      fd = openSync(this.device, "w");
    } catch (e) {
      throw new PowerControlError(`cannot open relay ${this.device}: ${(e as Error).message}`);
    }
    try {
      writeSync(fd, on ? this.onBytes : this.offBytes);
    } finally {
      closeSync(fd);
    }
  }
}

/** `--power uhubctl:LOCATION:PORT` or `--power relay:/dev/ttyUSB0`. */
export function parsePowerSpec(spec: string): PowerControl {
  const m = /^uhubctl:([^:]+):(\d+)$/.exec(spec);
  if (m) return new UhubctlPowerControl(m[1]!, Number(m[2]));
  const r = /^relay:(.+)$/.exec(spec);
  if (r) return new SerialRelayPowerControl(r[1]!);
  throw new PowerControlError(`--power takes uhubctl:LOCATION:PORT or relay:DEVICE, got "${spec}"`);
}
