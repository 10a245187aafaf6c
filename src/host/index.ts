/**
 * Public face of src/host: the host side of the Ukey — the typed Ukey client over any
 * ApduChannel, the offline issuer with its local SQLite DB (intents, reconciliation,
 * uploader, printing) and `runDiagnosis`.
 */
export { UkeyClient, UkeyError, isUkeyError, type LimitsAndStatus, type PinName } from "./client.ts";
export { HostDb, DB_SCHEMA_VERSION, type InvoiceRow, type IntentRow, type IntentKind } from "./db.ts";
export { HostError, HOST_ERROR_CODES, type HostErrorCode } from "./errors.ts";
export { BureauHttp, BureauHttpError, DEFAULT_HTTP_TIMEOUT_MS, type BureauHttpOptions, type BureauHttpErrorCode } from "./bureau-http.ts";
export { parseInvoiceInput, parseInvoiceJson, lineAmountFen, type InvoiceInput } from "./invoice-input.ts";
export { LocalIssuerAgent, purchasesFromSync, limitsFromSync, type IssuerAgent, type SyncPayload, type SyncMessageInput } from "./issuer-agent.ts";
export { setPassword, checkPassword, hasPassword, SCRYPT_PARAMS, PASSWORD_MIN_CHARS } from "./password.ts";
export {
  OfflineIssuer, draftOf, realSleep, DEFAULT_RETRY,
  type IssuerOptions, type IssueOptions, type ReconcileReport, type UploadReport, type SyncReport, type Identity, type Sleeper, type RetryPolicy,
} from "./issuer.ts";
export { renderInvoiceHtml, qrPayload, escapeHtml } from "./print.ts";
export {
  runDiagnosis, CHECKS, MAX_CLOCK_SKEW_MS, KEY_USAGE_WARN_FRACTION, DEFAULT_DIAGNOSE_TIMEOUT_MS,
  type CheckResult, type CheckStatus, type CheckId, type DiagnoseOptions, type Diagnosis,
} from "./diagnose.ts";
