export { createImage, FlashStore, openImage, SMALL_GEOMETRY, StoreError, type StoreErrorCode } from "../../src/flash-store/index.ts";
export { TINY as TINY_FOR_TESTS } from "./helpers.ts";
