// Parallel sentence pairs by verse key, for sentence-encoder evaluation: KJV↔WEB (English paraphrases) and
// KJV↔RV1909 (English–Spanish). One JSON line per pair, with the split of its book (as in the text corpora).
import { join } from 'node:path';
import { cleanText, splitOf } from '@tessera/datasets';
import { type Ctx, swordEntries } from './sources.js';
import { writeIfChanged } from './util.js';

export function pairLines(
  a: { key: string; book: string; text: string }[],
  b: { key: string; text: string }[],
): string[] {
  const bt = new Map(b.map((e) => [e.key, e.text]));
  const out: string[] = [];
  for (const e of a) {
    const other = bt.get(e.key);
    if (other === undefined) continue;
    const x = cleanText(e.text);
    const y = cleanText(other);
    if (x && y) out.push(JSON.stringify({ key: e.key, split: splitOf(`bible:${e.book}`), a: x, b: y }));
  }
  return out;
}

export function buildParallel(ctx: Ctx, out: string): { files: string[]; stats: Record<string, number> } {
  const kjv = swordEntries(ctx, 'sword-text-kjv');
  const files: string[] = [];
  const stats: Record<string, number> = {};
  for (const [name, pkg] of [
    ['kjv-web', 'sword-text-web'],
    ['kjv-rv1909', 'sword-text-sparv'],
  ] as const) {
    const lines = pairLines(kjv, swordEntries(ctx, pkg));
    const p = join(out, 'parallel', `${name}.jsonl`);
    writeIfChanged(p, `${lines.join('\n')}\n`);
    files.push(p);
    stats[name] = lines.length;
    ctx.log(`parallel ${name}: ${lines.length} pairs`);
  }
  return { files, stats };
}
