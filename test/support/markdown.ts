/** Markdown table parsing for the doc-vs-code tests. */
export interface MdTable {
  header: string[];
  rows: string[][];
}

/** Every pipe table in the text, in order. */
export function markdownTables(text: string): MdTable[] {
  const tables: MdTable[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i] as string;
    if (!line.startsWith("|") || !/^\|[-\s|:]+\|\s*$/.test(lines[i + 1] as string)) continue;
    const cells = (l: string) => l.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
    const header = cells(line);
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && (lines[j] as string).startsWith("|"); j++) rows.push(cells(lines[j] as string));
    tables.push({ header, rows });
    i = j;
  }
  return tables;
}

export function tableWithHeader(tables: MdTable[], first: string, second?: string): MdTable {
  const t = tables.find((x) => x.header[0] === first && (second === undefined || x.header[1] === second));
  if (!t) throw new Error(`no table whose header starts with "${first}"`);
  return t;
}
