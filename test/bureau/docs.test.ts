/** docs/bureau-api.md against the code: every route, error code and fault switch is documented. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { API_ROUTES, HTTP_ERROR_CODES, INVOICE_REJECTIONS, NO_FAULTS, REQUEST_REFUSALS } from "../../src/bureau/index.ts";
import { CHAIN_FAILURES } from "../../src/crypto/index.ts";

const DOC = readFileSync(resolve(import.meta.dirname, "../../docs/bureau-api.md"), "utf8");

describe("docs/bureau-api.md", () => {
  it("documents every route", () => {
    const missing = API_ROUTES.filter((route) => !DOC.includes(`\`${route}`));
    expect(missing).toEqual([]);
  });
  it("documents every error, refusal and rejection code", () => {
    const codes = [...HTTP_ERROR_CODES, ...REQUEST_REFUSALS, ...INVOICE_REJECTIONS, ...CHAIN_FAILURES];
    expect(codes.filter((code) => !DOC.includes(`\`${code}\``))).toEqual([]);
  });
  it("documents every fault switch", () => {
    expect(Object.keys(NO_FAULTS).filter((name) => !DOC.includes(`| \`${name}\` |`))).toEqual([]);
  });
});
