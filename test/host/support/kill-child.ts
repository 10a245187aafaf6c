/**
 * The host process of the SIGKILL test: opens the Ukey image (the card runs in this process,
 * so a kill is a host crash AND a Ukey power cut), logs in (which reconciles), then issues
 * requests FROM..TO-1 with request ids, printing each committed invoice to PRINT_LOG.
 * Usage: node --import tsx kill-child.ts IMAGE DB PRINT_LOG FROM TO [upload URL CAFILE]
 * UKEYSIM_CRASH=card:N kills the process right after the Ukey answered its N-th ISSUE (the
 * card committed, the DB did not); UKEYSIM_CRASH=print:N kills it inside the N-th print.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { openUkeyImage } from "../../../src/cos/index.ts";
import { InProcessChannel } from "../../../src/transport/index.ts";
import { Rng } from "../../../src/sim/index.ts";
import { UkeyClient, HostDb, OfflineIssuer, BureauHttp } from "../../../src/host/index.ts";
import { INS } from "../../../src/tax/index.ts";
import { PASSWORD, PROFILE, input } from "./constants.ts";

const [image, dbPath, printLog, from, to, mode, url, caFile] = process.argv.slice(2) as string[];
const clock = { now: () => Date.now() };
const [crashWhere, crashAt] = (process.env.UKEYSIM_CRASH ?? ":").split(":");
const crash = (where: string, n: number) => {
  if (where === crashWhere && n === Number(crashAt)) process.kill(process.pid, "SIGKILL");
};
let issues = 0;
let prints = 0;
const ukey = openUkeyImage({ path: image as string, clock, rng: new Rng(Date.now()) });
const db = new HostDb(dbPath as string);
const issuer = new OfflineIssuer({
  client: new UkeyClient(new (class extends InProcessChannel {
    override async transmit(apdu: Uint8Array): Promise<Uint8Array> {
      const r = await super.transmit(apdu);
      if (apdu[1] === INS.ISSUE) crash("card", ++issues);
      return r;
    }
  })(ukey.card)), db, clock, rng: new Rng(process.pid),
  ...(mode === "upload" ? { bureau: new BureauHttp({ serverUrl: url as string, caPem: readFileSync(caFile as string, "utf8") }) } : {}),
  printer: (_html, row) => crash("print", ++prints) ?? appendFileSync(printLog as string, `${row.invoiceCode}/${row.invoiceNumber}\n`),
});
const rec = await issuer.login({ password: PASSWORD, pin: PROFILE.userPin });
process.stdout.write(`ready ${JSON.stringify(rec)}\n`);
for (let i = Number(from); i < Number(to); i++) {
  const row = await issuer.issue(input(1000 + i), { requestId: `req-${i}` });
  process.stdout.write(`done ${i} ${row.invoiceNumber}\n`);
}
if (mode === "upload") process.stdout.write(`uploaded ${JSON.stringify(await issuer.upload())}\n`);
db.close();
ukey.chip.close();
process.stdout.write("exit\n");
