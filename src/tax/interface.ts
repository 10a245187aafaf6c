/**
 * The APDU interface of the Ukey as data: the 16 tax-control functions (C-style names as
 * in the paper, e.g. UKEY_GetNsrjxxqy) and the general / issuer commands around them.
 * docs/interface.md lists the same tables and a test checks the two agree.
 *
 * CLA 00: ISO inter-industry; CLA 80: proprietary, plain; CLA 84: proprietary with secure
 * messaging (bureau-authenticated, SM4 ciphertext + MAC + counter; see sm.ts). Bit 0x10
 * of CLA marks command chaining (not the last command of a chain).
 */
export const CLA_ISO = 0x00;
export const CLA_PROPRIETARY = 0x80;
export const CLA_SM = 0x84;
export const CLA_CHAIN_BIT = 0x10;

/** The tax-control application identifier (RID of our own + "TAXUKEY"). */
export const TAX_AID = Uint8Array.from([0xa0, 0x00, 0x00, 0x08, 0x86, 0x54, 0x41, 0x58, 0x55, 0x4b, 0x45, 0x59]);

export type Access =
  | "free"
  | "user PIN"
  | "SO PIN data"
  | "bureau SM"
  | "user PIN + bureau SM"
  | "bureau SM, factory state";

export const INS = {
  SELECT: 0xa4,
  GET_RESPONSE: 0xc0,
  GET_CHALLENGE: 0x84,
  EXTERNAL_AUTHENTICATE: 0x82,
  VERIFY: 0x20,
  CHANGE_PIN: 0x24,
  UNBLOCK_PIN: 0x2c,
  GENERATE_KEY_PAIR: 0x40,
  EXPORT_PUBLIC_KEY: 0x42,
  SIGN: 0x44,
  WRITE_CERT: 0x46,
  READ_CERT: 0x48,
  CLEAR_SECURITY_STATE: 0x4a,
  GET_TAXPAYER: 0x60,
  SET_TAXPAYER: 0x61,
  GET_INVOICE_TYPES: 0x62,
  SET_INVOICE_TYPES: 0x63,
  GET_PURCHASES: 0x64,
  SYNC_PURCHASES: 0x65,
  GET_LIMITS: 0x66,
  SET_LIMITS: 0x67,
  ISSUE: 0x70,
  VOID: 0x72,
  RED: 0x74,
  READ_INVOICE: 0x76,
  EXPORT_UNUPLOADED: 0x78,
  CONFIRM_UPLOAD: 0x79,
  GET_SECURE_TIME: 0x7a,
  GET_DEVICE_INFO: 0x7c,
  SET_PINS: 0xe0,
  SET_CLOCK: 0xe2,
  LOAD_TAX_KEY: 0xe4,
  SET_BUREAU_KEY: 0xe6,
  END_PERSONALIZATION: 0xe8,
} as const;

export interface CommandSpec {
  name: string;
  cla: number;
  ins: number;
  /** P1 P2 as documented, e.g. "04 00" or "00 01/02". */
  p1p2: string;
  access: Access;
  input: string;
  output: string;
  /** TYUKEY error offsets (n) this command may answer with, besides the general ones. */
  errors: readonly number[];
}

export interface TaxFunctionSpec extends CommandSpec {
  /** 1..16 */
  index: number;
  /** C-style function name, WINAPI DWORD return: 0 success, > 0 an error code. */
  cName: string;
  title: string;
}

const c = (name: string, cla: number, ins: number, p1p2: string, access: Access, input: string, output: string, errors: number[] = []): CommandSpec => ({ name, cla, ins, p1p2, access, input, output, errors });

/** General (ISO / GM/T 0016-style) and issuer commands. */
export const GENERAL_COMMANDS: readonly CommandSpec[] = [
  c("SELECT", CLA_ISO, INS.SELECT, "04 00/0C", "free", "AID", "none", [19]),
  c("GET RESPONSE", CLA_ISO, INS.GET_RESPONSE, "00 00", "free", "none", "pending response bytes"),
  c("GET CHALLENGE", CLA_ISO, INS.GET_CHALLENGE, "00 00", "free", "none (Le 1..255)", "random bytes; a 16-byte challenge arms EXTERNAL AUTHENTICATE"),
  c("EXTERNAL AUTHENTICATE", CLA_ISO, INS.EXTERNAL_AUTHENTICATE, "00 01", "free", "SM4-ECB(bureau key, challenge), 16 bytes", "none; opens the bureau SM session", [12]),
  c("VERIFY", CLA_ISO, INS.VERIFY, "00 01/02", "free", "PIN (4..16 bytes), or empty to ask the tries left", "none", [9, 10]),
  c("CHANGE PIN", CLA_ISO, INS.CHANGE_PIN, "00 01/02", "free", "u8 len, old PIN, new PIN", "none", [9, 10]),
  c("UNBLOCK PIN", CLA_ISO, INS.UNBLOCK_PIN, "00 01", "SO PIN data", "u8 len, SO PIN, new user PIN", "none", [9, 10]),
  c("GENERATE KEY PAIR", CLA_PROPRIETARY, INS.GENERATE_KEY_PAIR, "00 00", "user PIN", "none", "SM2 public key 04 x y (65 bytes); resets the usage counter", [14]),
  c("EXPORT PUBLIC KEY", CLA_PROPRIETARY, INS.EXPORT_PUBLIC_KEY, "00 00", "free", "none", "SM2 public key (65)", [19]),
  c("SIGN", CLA_PROPRIETARY, INS.SIGN, "00 00", "user PIN", "message (1..4096 bytes)", "SM2 signature, DER", [16, 19]),
  c("WRITE CERT", CLA_SM, INS.WRITE_CERT, "00..02 00", "bureau SM", "certificate DER (P1 0 device, 1 intermediate CA, 2 root CA)", "none", [14]),
  c("READ CERT", CLA_PROPRIETARY, INS.READ_CERT, "00..02 00", "free", "none", "certificate DER", [19]),
  c("CLEAR SECURITY STATE", CLA_PROPRIETARY, INS.CLEAR_SECURITY_STATE, "00 00", "free", "none", "none"),
  c("SET PINS", CLA_SM, INS.SET_PINS, "00 00", "bureau SM, factory state", "u8 len, user PIN, u8 len, SO PIN", "none", [11]),
  c("SET CLOCK", CLA_SM, INS.SET_CLOCK, "00 00", "bureau SM, factory state", "u32 Unix seconds", "none", [11, 15]),
  c("LOAD TAX KEY", CLA_SM, INS.LOAD_TAX_KEY, "00 00", "bureau SM, factory state", "16-byte tax-control key, text algorithm id", "none", [11]),
  c("SET BUREAU KEY", CLA_SM, INS.SET_BUREAU_KEY, "00 00", "bureau SM, factory state", "16-byte card key (replaces the transport key)", "none", [11]),
  c("END PERSONALIZATION", CLA_SM, INS.END_PERSONALIZATION, "00 00", "bureau SM, factory state", "none", "none; life cycle -> personalized", [11, 15]),
];

const t = (index: number, cName: string, title: string, spec: CommandSpec): TaxFunctionSpec => ({ index, cName, title, ...spec });

/** The 16 tax-control functions. */
export const TAX_FUNCTIONS: readonly TaxFunctionSpec[] = [
  t(1, "UKEY_GetNsrjxxqy", "read taxpayer registration", c("GET TAXPAYER", CLA_PROPRIETARY, INS.GET_TAXPAYER, "00 00", "user PIN", "none", "taxpayer record (200 bytes)", [19])),
  t(2, "UKEY_SetNsrjxxqy", "write taxpayer registration (bureau)", c("SET TAXPAYER", CLA_SM, INS.SET_TAXPAYER, "00 00", "bureau SM", "taxpayer record (200 bytes)", "none", [3, 18])),
  t(3, "UKEY_GetPzxx", "read invoice-type table", c("GET INVOICE TYPES", CLA_PROPRIETARY, INS.GET_INVOICE_TYPES, "00 00", "user PIN", "none", "10 x 37 bytes", [19])),
  t(4, "UKEY_SetPzxx", "write invoice-type table (bureau)", c("SET INVOICE TYPES", CLA_SM, INS.SET_INVOICE_TYPES, "00 00", "user PIN + bureau SM", "10 x 37 bytes", "none", [3])),
  t(5, "UKEY_GetLgxx", "read purchase (stock) records", c("GET PURCHASES", CLA_PROPRIETARY, INS.GET_PURCHASES, "00 00", "user PIN", "none", "10 x 48 bytes", [19])),
  t(6, "UKEY_SyncLgxx", "sync purchase records (bureau)", c("SYNC PURCHASES", CLA_SM, INS.SYNC_PURCHASES, "00 00", "bureau SM", "10 x 48 bytes; a known batch never moves its next number back", "none", [3, 21])),
  t(7, "UKEY_GetLxxz", "read offline limits and status", c("GET LIMITS", CLA_PROPRIETARY, INS.GET_LIMITS, "00 00", "user PIN", "none", "limits (40) + offline status (32)", [19])),
  t(8, "UKEY_SetLxxz", "set offline limits (bureau)", c("SET LIMITS", CLA_SM, INS.SET_LIMITS, "00 00", "bureau SM", "limits (40 bytes)", "none", [3])),
  t(9, "UKEY_Kjfp", "issue an invoice", c("ISSUE", CLA_PROPRIETARY, INS.ISSUE, "00 00", "user PIN", "draft invoice, canonical encoding (code, number, time empty)", "issued invoice: seq, invoice, tax control code, SM2 signature", [15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 14])),
  t(10, "UKEY_Zffp", "void an invoice", c("VOID", CLA_PROPRIETARY, INS.VOID, "00 00", "user PIN", "invoice code (12 ASCII) + u32 number", "void receipt: time + SM2 signature", [15, 16, 19, 27, 14])),
  t(11, "UKEY_Chfp", "issue a red-letter (credit) invoice", c("RED", CLA_PROPRIETARY, INS.RED, "00 00", "user PIN", "draft red invoice naming its original", "issued invoice as for ISSUE", [15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 14])),
  t(12, "UKEY_Dqfp", "read an issued invoice", c("READ INVOICE", CLA_PROPRIETARY, INS.READ_INVOICE, "00 00", "user PIN", "invoice code (12 ASCII) + u32 number", "stored invoice: state + issued invoice", [19])),
  t(13, "UKEY_DcWscsj", "export un-uploaded records as a signed batch", c("EXPORT UNUPLOADED", CLA_PROPRIETARY, INS.EXPORT_UNUPLOADED, "00 00", "user PIN", "u32 first event sequence (0 = oldest pending)", "signed batch of up to 16 events", [16, 19])),
  t(14, "UKEY_QrScjg", "confirm upload (bureau receipt)", c("CONFIRM UPLOAD", CLA_SM, INS.CONFIRM_UPLOAD, "00 00", "bureau SM", "u32 last event sequence the bureau holds", "u32 events up to it still unconfirmed (16 settle per command); settled invoices become reclaimable", [3])),
  t(15, "UKEY_GetAqsz", "read the secure time", c("GET SECURE TIME", CLA_PROPRIETARY, INS.GET_SECURE_TIME, "00 00", "free", "none", "secure time (20 bytes)", [15])),
  t(16, "UKEY_GetSbxx", "read device and health information", c("GET DEVICE INFO", CLA_PROPRIETARY, INS.GET_DEVICE_INFO, "00 00", "free", "none", "device info (64 bytes)")),
];

export const ALL_COMMANDS: readonly CommandSpec[] = [...GENERAL_COMMANDS, ...TAX_FUNCTIONS];

export function commandByIns(ins: number): CommandSpec | undefined {
  return ALL_COMMANDS.find((x) => x.ins === ins);
}

export const PinRef = { USER: 0x01, SO: 0x02 } as const;
export const PIN_MIN_LENGTH = 4;
export const PIN_MAX_LENGTH = 16;
export const PIN_MAX_TRIES = 6;
export const SO_PIN_MAX_TRIES = 10;
/** Signatures one key pair may make before it must be renewed (the article's 1,000,000 uses). */
export const KEY_USAGE_LIMIT = 1_000_000;
export const CERT_SLOTS = 3;
export const CHALLENGE_BYTES = 16;
export const MAX_EXPORT_EVENTS = 16;
export const MAX_SIGN_MESSAGE_BYTES = 4096;
