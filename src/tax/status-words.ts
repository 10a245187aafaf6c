/**
 * ISO/IEC 7816-4 status words the Ukey answers with, plus the proprietary tax range 94xx.
 * Every response ends in one of these (63Cx stands for 63C0..63CF, 61xx for 6100..61FF).
 */
export const SW = {
  OK: 0x9000,
  MORE_DATA: 0x6100, // 61xx: xx more bytes available with GET RESPONSE
  PIN_WRONG: 0x63c0, // 63Cx: verification failed, x tries left
  MEMORY_FAILURE: 0x6581,
  WRONG_LENGTH: 0x6700,
  LOGICAL_CHANNEL_NOT_SUPPORTED: 0x6881,
  SECURE_MESSAGING_NOT_SUPPORTED: 0x6882,
  LAST_COMMAND_EXPECTED: 0x6883,
  CHAINING_NOT_SUPPORTED: 0x6884,
  SECURITY_NOT_SATISFIED: 0x6982,
  AUTH_METHOD_BLOCKED: 0x6983,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  SM_DATA_INCORRECT: 0x6988,
  WRONG_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  FILE_NOT_FOUND: 0x6a82,
  RECORD_NOT_FOUND: 0x6a83,
  NOT_ENOUGH_MEMORY: 0x6a84,
  WRONG_P1P2: 0x6a86,
  WRONG_LE: 0x6c00, // 6Cxx: wrong Le, xx is the exact length
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  NO_PRECISE_DIAGNOSIS: 0x6f00,
} as const;

/** Proprietary tax-control status words: 94nn, nn = the TYUKEY error offset (see errors.ts). */
export const SW_TAX_BASE = 0x9400;

export interface StatusWordInfo {
  sw: number;
  /** Matching mask: 0xFFFF exact, 0xFF00 for 61xx/6Cxx, 0xFFF0 for 63Cx. */
  mask: number;
  meaning: string;
}

/** The ISO status words (not the 94nn tax range) with their meanings; docs/interface.md lists them. */
export const STATUS_WORDS: readonly StatusWordInfo[] = [
  { sw: 0x9000, mask: 0xffff, meaning: "success" },
  { sw: 0x6100, mask: 0xff00, meaning: "more response data: send GET RESPONSE with Le = SW2" },
  { sw: 0x63c0, mask: 0xfff0, meaning: "PIN verification failed, SW2 low nibble = tries left" },
  { sw: 0x6581, mask: 0xffff, meaning: "memory failure (flash write failed)" },
  { sw: 0x6700, mask: 0xffff, meaning: "wrong length (Lc/Le or data field length)" },
  { sw: 0x6881, mask: 0xffff, meaning: "logical channel not supported" },
  { sw: 0x6882, mask: 0xffff, meaning: "secure messaging not supported for this command" },
  { sw: 0x6883, mask: 0xffff, meaning: "last command of a chain expected" },
  { sw: 0x6884, mask: 0xffff, meaning: "command chaining not supported here / chain too long" },
  { sw: 0x6982, mask: 0xffff, meaning: "security status not satisfied (PIN or bureau authentication needed)" },
  { sw: 0x6983, mask: 0xffff, meaning: "authentication method blocked (PIN locked)" },
  { sw: 0x6985, mask: 0xffff, meaning: "conditions of use not satisfied (life cycle or state)" },
  { sw: 0x6988, mask: 0xffff, meaning: "secure messaging data objects incorrect (MAC or cryptogram)" },
  { sw: 0x6a80, mask: 0xffff, meaning: "incorrect data field" },
  { sw: 0x6a81, mask: 0xffff, meaning: "function not supported" },
  { sw: 0x6a82, mask: 0xffff, meaning: "application or file not found" },
  { sw: 0x6a83, mask: 0xffff, meaning: "record not found (requested data does not exist)" },
  { sw: 0x6a84, mask: 0xffff, meaning: "not enough memory space (storage full)" },
  { sw: 0x6a86, mask: 0xffff, meaning: "incorrect P1 P2" },
  { sw: 0x6c00, mask: 0xff00, meaning: "wrong Le: SW2 is the exact length" },
  { sw: 0x6d00, mask: 0xffff, meaning: "instruction not supported" },
  { sw: 0x6e00, mask: 0xffff, meaning: "class not supported" },
  { sw: 0x6f00, mask: 0xffff, meaning: "no precise diagnosis (internal error)" },
];

export function isOk(sw: number): boolean {
  return sw === SW.OK;
}

export function hexSw(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, "0");
}
