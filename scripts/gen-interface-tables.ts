/** Prints the markdown tables of docs/interface.md from src/tax (used once to write the doc; the test keeps them in step). */
import { ALL_COMMANDS, GENERAL_COMMANDS, hexSw, STATUS_WORDS, TAX_ERRORS, TAX_FUNCTIONS, TYUKEY_BASE } from "../src/tax/index.ts";

const h2 = (n: number) => n.toString(16).toUpperCase().padStart(2, "0");
console.log("| # | Function | INS | CLA | P1 P2 | Access | Input | Output | Errors (+n) |");
console.log("|---|----------|-----|-----|-------|--------|-------|--------|-------------|");
for (const f of TAX_FUNCTIONS) console.log(`| ${f.index} | ${f.cName} | ${h2(f.ins)} | ${h2(f.cla)} | ${f.p1p2} | ${f.access} | ${f.input} | ${f.output} | ${f.errors.join(", ")} |`);
console.log();
console.log("| Command | CLA | INS | P1 P2 | Access | Input | Output | Errors (+n) |");
console.log("|---------|-----|-----|-------|--------|-------|--------|-------------|");
for (const c of GENERAL_COMMANDS) console.log(`| ${c.name} | ${h2(c.cla)} | ${h2(c.ins)} | ${c.p1p2} | ${c.access} | ${c.input} | ${c.output} | ${c.errors.join(", ")} |`);
console.log();
console.log(`| n | Code | Name | SW | Meaning |`);
console.log(`|---|------|------|----|---------|`);
for (const e of TAX_ERRORS) console.log(`| ${e.n} | 0x${(TYUKEY_BASE + e.n).toString(16).toUpperCase().padStart(8, "0")} | ${e.name} | ${e.sw === null ? "-" : hexSw(e.sw)} | ${e.meaning} |`);
console.log();
console.log("| SW | Meaning |");
console.log("|----|---------|");
for (const s of STATUS_WORDS) console.log(`| ${s.mask === 0xffff ? hexSw(s.sw) : s.mask === 0xff00 ? hexSw(s.sw).slice(0, 2) + "xx" : hexSw(s.sw).slice(0, 3) + "x"} | ${s.meaning} |`);
void ALL_COMMANDS;
