/**
 * Public face of src/tax: ground shared by the COS, the host and the bureau: the
 * interface table (16 tax-control functions, 27 error codes, status words), APDU codec,
 * canonical invoice encoding, amounts in fen, data-area layouts, the tax-control-code
 * plug-in, secure messaging and the issuer-side command builders.
 */
export * from "./status-words.ts";
export * from "./errors.ts";
export * from "./apdu.ts";
export * from "./bytes.ts";
export * from "./amount.ts";
export * from "./invoice.ts";
export * from "./layouts.ts";
export * from "./interface.ts";
export * from "./tax-code.ts";
export * from "./sm.ts";
export * from "./messages.ts";
export * from "./issuer.ts";
export * from "./profile.ts";
