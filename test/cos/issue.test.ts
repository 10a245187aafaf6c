import { describe, expect, it } from "vitest";
import { sm2Verify } from "../../src/crypto/index.ts";
import { decodeInvoice, signedInvoiceBytes, SM4_STANDIN_TAX_CODE, INS, call, E } from "../../src/tax/index.ts";
import { readyCard, issue, draft, cmd, PROFILE, ISSUE_TIME, swOf } from "./helpers.ts";

describe("issue", () => {
  it("issues an invoice with code, number and secure time, a verifiable tax code and SM2 signature", async () => {
    const r = await readyCard();
    r.clock.advance(3_600_000);
    const x = await issue(r);
    const inv = decodeInvoice(x.invoice);
    expect(inv.invoiceCode).toBe("137001900111");
    expect(inv.invoiceNumber).toBe(1001);
    expect(inv.issuedAt).toBe(ISSUE_TIME + 3600);
    expect(SM4_STANDIN_TAX_CODE.verify(PROFILE.taxKey, x.invoice, x.taxCode)).toBe(true);
    const pub = await call(r.send, cmd(INS.EXPORT_PUBLIC_KEY, undefined, 65));
    expect(sm2Verify(pub, signedInvoiceBytes(x.invoice, x.taxCode), x.signature)).toBe(true);
    const y = await issue(r);
    expect(decodeInvoice(y.invoice).invoiceNumber).toBe(1002);
    expect(y.seq).toBe(x.seq + 1);
  });
  it("refuses without the user PIN", async () => {
    const r = await readyCard();
    await call(r.send, cmd(INS.CLEAR_SECURITY_STATE));
    expect(await swOf(issue(r))).toBe(E.NEED_AUTH);
  });
  void draft;
});
