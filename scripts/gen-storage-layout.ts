/** Prints docs/storage-layout.md's layout sections from src/tax LAYOUTS (the test keeps them in step). */
import { LAYOUTS } from "../src/tax/index.ts";

for (const l of LAYOUTS) {
  console.log(`## ${l.title} (\`${l.id}\`)\n`);
  console.log(`- Location: ${l.location}`);
  console.log(`- Total length: ${l.records} x ${l.recordLength} = ${l.records * l.recordLength} bytes`);
  console.log(`- Read: ${l.read}`);
  console.log(`- Write: ${l.write}\n`);
  console.log("| Offset | Field | Length | Encoding | Meaning |");
  console.log("|--------|-------|--------|----------|---------|");
  for (const f of l.fields) console.log(`| ${f.offset} | ${f.name} | ${f.length} | ${f.encoding} | ${f.meaning} |`);
  console.log();
}
