/** Public face of src/secure-clock. */
export {
  SecureClock, ClockError, ClockState, PLAIN_SEAL, CLOCK_RECORD_TYPE, CLOCK_RECORD_ID, DEFAULT_BATTERY_LIFE_MS, MIN_BATTERY_LIFE_MS,
  MAX_DRIFT_PPM, MAX_DRIFT_SECONDS_PER_DAY, MIN_SET_SECONDS, MAX_SET_SECONDS,
  type ClockStateValue, type RecordSeal, type SecureClockOptions,
} from "./clock.ts";
