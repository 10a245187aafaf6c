/**
 * Public face of src/bureau: the tax bureau's receiver (sync, upload, time, CRL) over HTTPS,
 * with fault switches. docs/bureau-api.md describes the HTTP API.
 */
export { startBureau, type Bureau, type StartBureauOptions } from "./server.ts";
export { NO_FAULTS, mergeFaults, FaultError, MAX_FAULT_DELAY_MS, MAX_CLOCK_SKEW_MS, type BureauFaults, type ServerCertificateFault } from "./faults.ts";
export {
  BureauService, BureauError, INVOICE_REJECTIONS, REQUEST_REFUSALS, MAX_CLIENT_CLOCK_SKEW_MS, MAX_INVOICES_PER_BATCH, MAX_CHAIN_CERTIFICATES,
  type Receipt, type RejectedInvoice, type UploadResponse, type SyncPayload, type SyncResponse, type IssuerMessage,
} from "./service.ts";
export { InvoiceFormatError, MAX_INVOICE_BYTES, INVOICE_KINDS, type InvoiceFields, type InvoiceFormat } from "./invoice-format.ts";
export { syncMessages, confirmMessages, toPurchaseRecords, toOfflineLimits } from "./issuer-messages.ts";
export { TAX_INVOICE_FORMAT, taxInvoiceFormat, splitSignedInvoice, invoiceFields, signInvoiceAsDevice } from "./tax-format.ts";
export { createBureauPki, issueDevice, publishCrl, CRL_VALIDITY_MS, CRL_REPUBLISH_MS, type BureauPki, type DeviceCertificateRequest } from "./pki.ts";
export { BureauStore, type Limits, type Restrictions, type StockRange, type TaxpayerRecord, type StoredInvoice } from "./store.ts";
export { DEFAULT_MAX_BODY_BYTES, API_PREFIX, API_ROUTES, HTTP_ERROR_CODES } from "./http.ts";
export { WRONG_HOST, SERVER_HOSTS, type TlsMaterial, type TlsIdentity } from "./tls.ts";
export { issueUkey, type IssueUkeyInput, type IssuedUkey } from "./issuance.ts";
