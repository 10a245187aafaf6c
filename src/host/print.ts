/**
 * The printable invoice: one self-contained HTML page with every field, the tax control
 * code, the SM2 signature and a QR code (inline SVG) carrying
 *   01,<type>,<invoice code>,<number>,<total excl. tax yuan>,<date YYYYMMDD>,<tax control code>
 * in the manner of Chinese VAT invoice QR codes.
 */
import QRCode from "qrcode";
import { decodeInvoice, formatYuan, formatInvoiceNumber, beijingText, InvoiceKind, IssueMode, invoiceGrandTotal } from "../tax/index.ts";
import type { InvoiceRow } from "./db.ts";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

function beijing(seconds: number): string {
  const t = beijingText(seconds);
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}`;
}

export function qrPayload(row: InvoiceRow): string {
  const inv = decodeInvoice(row.invoice);
  return ["01", inv.typeCode, inv.invoiceCode, formatInvoiceNumber(inv.invoiceNumber), formatYuan(inv.totalAmountFen), beijingText(inv.issuedAt).slice(0, 8), row.taxCode].join(",");
}

export async function renderInvoiceHtml(row: InvoiceRow): Promise<string> {
  const inv = decodeInvoice(row.invoice);
  const e = escapeHtml;
  const qr = await QRCode.toString(qrPayload(row), { type: "svg", errorCorrectionLevel: "M", margin: 1 });
  const red = inv.kind === InvoiceKind.RED;
  const sign = red ? "-" : "";
  const lines = inv.lines.map((l) => `<tr><td>${e(l.name)}</td><td>${e(l.unit)}</td><td class="n">${(l.quantityMilli / 1000).toFixed(3)}</td><td class="n">${formatYuan(l.unitPriceFen)}</td><td class="n">${sign}${formatYuan(l.amountFen)}</td><td class="n">${(l.taxRatePermille / 10).toFixed(1)}%</td><td class="n">${sign}${formatYuan(l.taxFen)}</td></tr>`).join("\n");
  const status = row.voidedAt !== null ? `<p class="void">作废 VOID (${e(beijing(row.voidedAt))})</p>` : "";
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>发票 ${e(inv.invoiceCode)} ${formatInvoiceNumber(inv.invoiceNumber)}</title>
<style>body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",sans-serif;margin:2em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #a33;padding:4px}.n{text-align:right}.void{color:#c00;font-size:2em}.qr{width:120px;float:right}code{word-break:break-all}</style></head>
<body>
<div class="qr">${qr}</div>
<h1>${red ? "红字发票 (credit note)" : "发票"} — ${e(inv.typeCode)}</h1>
${status}
<dl>
<dt>发票代码 invoice code</dt><dd id="invoice-code">${e(inv.invoiceCode)}</dd>
<dt>发票号码 invoice number</dt><dd id="invoice-number">${formatInvoiceNumber(inv.invoiceNumber)}</dd>
<dt>开票日期 issued</dt><dd id="issued-at">${e(beijing(inv.issuedAt))} (Beijing time, Ukey secure clock)</dd>
<dt>开具方式 mode</dt><dd>${inv.mode === IssueMode.OFFLINE ? "离线 offline" : "在线 online"}</dd>
<dt>机器编号 machine number</dt><dd>${e(inv.machineNumber)}</dd>
<dt>销售方 seller</dt><dd>${e(inv.sellerName)} (${e(inv.taxpayerId)})</dd>
<dt>购买方 buyer</dt><dd id="buyer">${e(inv.buyerName)}${inv.buyerTaxId ? ` (${e(inv.buyerTaxId)})` : ""}</dd>
${red ? `<dt>原发票 original</dt><dd id="original">${e(inv.originalCode)} ${formatInvoiceNumber(inv.originalNumber)}</dd>` : ""}
</dl>
<table><thead><tr><th>名称 item</th><th>单位 unit</th><th>数量 qty</th><th>单价 price</th><th>金额 amount</th><th>税率 rate</th><th>税额 tax</th></tr></thead>
<tbody>
${lines}
</tbody>
<tfoot><tr><td colspan="4">合计 total</td><td class="n">${sign}${formatYuan(inv.totalAmountFen)}</td><td></td><td class="n">${sign}${formatYuan(inv.totalTaxFen)}</td></tr>
<tr><td colspan="4">价税合计 total incl. tax</td><td colspan="3" class="n" id="grand-total">¥${sign}${formatYuan(invoiceGrandTotal(inv))}</td></tr></tfoot></table>
<p>税控码 tax control code: <code id="tax-code">${e(row.taxCode)}</code></p>
<p>签名 SM2 signature: <code id="signature">${Buffer.from(row.signature).toString("hex")}</code></p>
${inv.remark ? `<p>备注 remark: ${e(inv.remark)}</p>` : ""}
</body></html>
`;
}
