/**
 * Time is injected. Below src/cli nothing reads the wall clock: it asks a `Clock`.
 * Simulation runs use `VirtualClock`; `serve` mode passes a wall clock made in src/cli.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch, as this run sees it. */
  now(): number;
}

export const MS_PER_SECOND = 1000;
export const MS_PER_DAY = 86_400_000;

/** A clock that moves only when told to. Starts at `startMs` (default 2026-01-01T00:00:00Z). */
export class VirtualClock implements Clock {
  static readonly DEFAULT_START_MS = Date.UTC(2026, 0, 1);
  private current: number;

  constructor(startMs: number = VirtualClock.DEFAULT_START_MS) {
    if (!Number.isFinite(startMs)) throw new RangeError(`clock start must be finite, got ${startMs}`);
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance needs a finite non-negative step, got ${ms}`);
    this.current += ms;
  }

  /** Jump to any instant, backwards too: tests use it to model host clock tampering. */
  set(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`clock time must be finite, got ${ms}`);
    this.current = ms;
  }
}
