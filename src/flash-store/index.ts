export {
  StoreError, checkRecordKey, checkTransaction, CRITICAL_TYPE_LIMIT, MAX_RECORD_BYTES, MAX_TX_OPS, RECORD_ID_MAX, RECORD_TYPE_MAX,
  type RecordStore, type StoreErrorCode, type StoreStats, type TxOp,
} from "./api.ts";
export { ModelStore } from "./model.ts";
export {
  DEFAULT_GEOMETRY, SMALL_GEOMETRY, ECC_SECTOR_BYTES, ECC_BYTES_PER_SECTOR, checkGeometry, describeGeometry, deviceDataBytes, pageTotalBytes,
  type Geometry,
} from "./geometry.ts";
export { NandChip, PowerLossError, tearOperationOnFork, ENDURANCE_CYCLES, type NandOp, type NandObserver, type NandChipOptions, type ChipSnapshot } from "./nand.ts";
export { eccEncode, eccCorrect, type EccResult } from "./ecc.ts";
export { crc32 } from "./crc32.ts";
export { FlashStore, DecryptCache, type FlashStoreOptions, type FormatOptions, type FlashStats } from "./store.ts";
export {
  runCutCampaign, runCutCampaignParallel, CutCampaignPool, CampaignWorkers, serveCampaignWorker, serveCutCampaignWorker, mergeCutResults, subShard, stretchOf, defaultJobs, checkJobs, MAX_JOBS, type WorkerHandler,
  randomScenario, campaignKey, SCENARIO_TYPES, diffStores, keysOf, replayId, type RandomScenarioOptions, type CutScenario, type CutFailure, type CampaignOptions, type CampaignResult } from "./campaign.ts";
export { FileMedia, createImage, openImage, saveImage, imageBytes, IMAGE_MAGIC, IMAGE_VERSION, IMAGE_HEADER_BYTES, IMAGE_SECURE_OFFSET, IMAGE_TABLE_OFFSET, TAIL_READ_AHEAD_PAGES, type ImageOptions } from "./file-image.ts";
export { MemoryMedia, SECURE_AREA_BYTES, type Media, type MemorySnapshot } from "./media.ts";
export { inspectChip, formatInspectReport, HISTOGRAM_BUCKETS, type InspectReport } from "./inspect.ts";
export { bytesEqual } from "./layout.ts";
