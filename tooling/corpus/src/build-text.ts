// Text corpora per language: documents from each source, cleaned (NFC, optional lower-casing, Hebrew points
// dropped), split 90/5/5 by document key, written as train/valid/test.txt with a docs.tsv index; plus a small
// English slice for tests and smoke runs.
import { join } from 'node:path';
import { cleanText, SPLITS, type SplitName, shuffle, splitOf } from '@tessera/datasets';
import type { Ctx, Doc, TextSource } from './sources.js';
import { mb, writeIfChanged } from './util.js';

export interface TextOptions {
  lowercase: boolean;
  langs: string[];
  /** Size of the English slice's train split in bytes (valid and test get 1/16 of it each). */
  sliceBytes: number;
  seed: number;
}

export interface Skipped {
  source: string;
  reason: string;
}

export interface LangStats {
  docs: Record<SplitName, number>;
  bytes: Record<SplitName, number>;
  sources: Record<string, number>;
}

export interface CleanDoc extends Doc {
  source: string;
  split: SplitName;
}

/** Reads, cleans and splits the documents of some sources; sources that cannot be had are reported, not fatal. */
export function collectDocs(ctx: Ctx, sources: TextSource[], lowercase: boolean, skipped: Skipped[]): CleanDoc[] {
  const out: CleanDoc[] = [];
  for (const s of sources) {
    let docs: Doc[];
    const t0 = Date.now();
    try {
      docs = s.read(ctx);
    } catch (e) {
      const reason = (e as Error).message;
      skipped.push({ source: `${s.id} (${s.from})`, reason });
      ctx.log(`  skipped ${s.id}: ${reason}`);
      continue;
    }
    let bytes = 0;
    for (const d of docs) {
      const text = cleanText(d.text, { lowercase });
      if (!text) continue;
      bytes += Buffer.byteLength(text);
      out.push({ ...d, text, source: s.id, split: splitOf(d.splitKey) });
    }
    ctx.log(`  ${s.lang} ${s.id}: ${docs.length} documents, ${mb(bytes)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return out;
}

/** Writes <dir>/{train,valid,test}.txt and docs.tsv; documents are separated by a blank line. Returns file paths. */
export function writeCorpus(dir: string, docs: CleanDoc[]): { files: string[]; stats: LangStats } {
  const stats: LangStats = {
    docs: { train: 0, valid: 0, test: 0 },
    bytes: { train: 0, valid: 0, test: 0 },
    sources: {},
  };
  const files: string[] = [];
  const index: string[] = ['id\tsplit\tsource\tbytes'];
  for (const split of SPLITS) {
    const ds = docs.filter((d) => d.split === split);
    const text = ds.length ? `${ds.map((d) => d.text).join('\n\n')}\n` : '';
    for (const d of ds) {
      const b = Buffer.byteLength(d.text);
      index.push(`${d.id}\t${split}\t${d.source}\t${b}`);
      stats.sources[d.source] = (stats.sources[d.source] ?? 0) + b;
    }
    stats.docs[split] = ds.length;
    stats.bytes[split] = Buffer.byteLength(text);
    const p = join(dir, `${split}.txt`);
    writeIfChanged(p, text);
    files.push(p);
  }
  const p = join(dir, 'docs.tsv');
  writeIfChanged(p, `${index.join('\n')}\n`);
  files.push(p);
  return { files, stats };
}

/** A small slice: whole documents in a seeded order until each split reaches its byte budget. */
export function sliceDocs(docs: CleanDoc[], trainBytes: number, seed: number): CleanDoc[] {
  const budget: Record<SplitName, number> = { train: trainBytes, valid: trainBytes / 16, test: trainBytes / 16 };
  const used: Record<SplitName, number> = { train: 0, valid: 0, test: 0 };
  const out: CleanDoc[] = [];
  for (const d of shuffle(docs, seed)) {
    const b = Buffer.byteLength(d.text);
    if (used[d.split] >= budget[d.split] || b > budget[d.split] / 4) continue;
    used[d.split] += b;
    out.push(d);
  }
  // keep the corpus order (by source, then document) inside the slice
  const rank = new Map(docs.map((d, i) => [d, i]));
  return out.sort((a, b) => rank.get(a)! - rank.get(b)!);
}

export function buildText(ctx: Ctx, out: string, sources: TextSource[], opts: TextOptions, skipped: Skipped[]) {
  const files: string[] = [];
  const stats: Record<string, LangStats> = {};
  for (const lang of opts.langs) {
    const srcs = sources.filter((s) => s.lang === lang);
    ctx.log(`text ${lang}: ${srcs.map((s) => s.id).join(', ')}`);
    const docs = collectDocs(ctx, srcs, opts.lowercase, skipped);
    if (!docs.length) continue;
    const w = writeCorpus(join(out, 'text', lang), docs);
    files.push(...w.files);
    stats[lang] = w.stats;
    ctx.log(
      `text ${lang}: train ${mb(w.stats.bytes.train)}, valid ${mb(w.stats.bytes.valid)}, test ${mb(w.stats.bytes.test)}`,
    );
    if (lang === 'en') {
      const s = writeCorpus(join(out, 'text', 'en-slice'), sliceDocs(docs, opts.sliceBytes, opts.seed));
      files.push(...s.files);
      stats['en-slice'] = s.stats;
      ctx.log(
        `text en-slice: train ${mb(s.stats.bytes.train)}, valid ${mb(s.stats.bytes.valid)}, test ${mb(s.stats.bytes.test)}`,
      );
    }
  }
  return { files, stats };
}
