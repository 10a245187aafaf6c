/**
 * Host-side refusals that are not the Ukey's (those are UkeyError): bad input, wrong host
 * password, the order rules of the offline flow. Each has a stable code and a message,
 * and is thrown before anything changed.
 */
export const HOST_ERROR_CODES = [
  "BAD_INVOICE_INPUT", // the invoice JSON does not follow docs/invoice-input.md
  "BAD_ARGUMENT", // an option or argument is malformed
  "NO_PASSWORD", // the host system password was never set
  "BAD_PASSWORD", // the host system password is wrong
  "NOT_LOGGED_IN", // login first (host password + Ukey PIN)
  "OFFLINE_DATA_PENDING", // online issuing refused until every offline invoice is uploaded
  "NO_BUREAU", // the command needs the bureau (--server)
  "NO_ISSUER_AGENT", // nothing can build the bureau's secure messages for the Ukey
  "BAD_BUREAU_ANSWER", // the bureau's answer is malformed or its signature does not verify
  "UPLOAD_REJECTED", // the bureau rejected an invoice
  "UNKNOWN_INVOICE", // no such invoice in the local database
  "WRONG_DEVICE", // the database belongs to another Ukey
] as const;

export type HostErrorCode = (typeof HOST_ERROR_CODES)[number];

export class HostError extends Error {
  constructor(readonly code: HostErrorCode, message: string, readonly detail?: Record<string, unknown>) {
    super(`${code}: ${message}`);
    this.name = "HostError";
  }
}
