/** Constants and inputs shared by the host tests and the SIGKILL child (kept free of the bureau's imports). */
import { readFileSync } from "node:fs";
import { parseProfile, type IssuanceProfile } from "../../../src/tax/index.ts";
import type { InvoiceInput } from "../../../src/host/index.ts";

export const PROFILE_TEXT = readFileSync(new URL("../../../fixtures/profile-default.json", import.meta.url), "utf8");
export const PROFILE: IssuanceProfile = parseProfile(PROFILE_TEXT);
export const SERIAL = "UK00000000000001";
/** 2026-01-01T00:00:00Z, the card's issuance time. */
export const ISSUE_TIME_MS = 1_767_225_600_000;
export const PASSWORD = "host-secret-1";
export const WALL = { now: () => Date.now() };

export function input(amountFen = 10_000, over: Partial<InvoiceInput> = {}): InvoiceInput {
  const taxFen = Math.floor((amountFen * 130 + 500) / 1000);
  return {
    typeCode: "02601", buyerName: "张三", buyerTaxId: "", remark: "",
    lines: [{ name: "办公用品", unit: "件", quantityMilli: 1000, unitPriceFen: amountFen, amountFen, taxRatePermille: 130, taxFen }],
    ...over,
  };
}
