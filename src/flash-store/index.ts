export {
  StoreError, checkRecordKey, checkTransaction, CRITICAL_TYPE_LIMIT, MAX_RECORD_BYTES, MAX_TX_OPS, RECORD_ID_MAX, RECORD_TYPE_MAX,
  type RecordStore, type StoreErrorCode, type StoreStats, type TxOp,
} from "./api.ts";
export { ModelStore } from "./model.ts";
