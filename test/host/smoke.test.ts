import { it, expect } from "vitest";
import { newRig, input } from "./support/rig.ts";
it("smoke", async () => {
  const r = await newRig();
  try {
    const s = await r.issuer.sync();
    expect(s.messagesApplied).toBe(3);
    const row = await r.issuer.issue(input());
    expect(row.invoiceNumber).toBe(1001);
    const up = await r.issuer.upload();
    expect(up.uploaded).toBe(1);
  } finally { await r.stop(); }
});
