// The README's example, run as written with the imports it shows. The folders it reads (data/…, LibriSpeech/…,
// u0001.TextGrid) are built here under os.tmpdir() with the same relative layout, and the paths are prefixed
// with that folder.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bucketByLength,
  CharVocab,
  cleanText,
  FormatError,
  intervalTier,
  padBatch,
  parseTextGrid,
  splitOf,
} from '@tessera/datasets';
import { readLibriSpeech, readManifestFile, readTextCorpus, readTextGridFile } from '@tessera/datasets/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
let root = '';
const put = (rel: string, content: string) => {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
};

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'datasets-readme-'));
  put('data/text/en/train.txt', 'The  Cat sat.\r\nOn the MAT.\n');
  put('data/text/en/valid.txt', 'The  mat\tsat.\n');
  const utts = Array.from({ length: 40 }, (_, i) => ({
    audio: `wav/u${i}.wav`,
    text: 'hi',
    phones: [
      [0, 0.1, 'h'],
      [0.1, 0.2 + i / 100, 'aɪ'],
    ],
    speaker: `s${i % 3}`,
    duration: 0.2 + i / 100,
  }));
  put('data/speech/synth-smoke/16k/train.jsonl', `${utts.map((u) => JSON.stringify(u)).join('\n')}\n`);
  copyFileSync(join(fixtures, 'hello.short.TextGrid'), join(root, 'u0001.TextGrid'));
  put(
    'LibriSpeech/dev-clean/84/121123/84-121123.trans.txt',
    '84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS\n',
  );
  put('LibriSpeech/dev-clean/84/121123/84-121123-0000.flac', '');
  put('LibriSpeech/dev-clean/84/121123/84-121123-0001.flac', '');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('README example', () => {
  it('reads a corpus, splits, manifests, TextGrids and LibriSpeech folders', async () => {
    const at = (p: string) => join(root, p);

    // ---- README block (paths under the temporary folder)
    const { train, valid } = await readTextCorpus(at('data/text/en'));
    const vocab = CharVocab.fromText(cleanText(train, { lowercase: true }));
    const ids = vocab.encode(cleanText(valid, { lowercase: true }));

    const split = splitOf('sotu:1790_george_washington_n.txt'); // 'train' | 'valid' | 'test', 90/5/5 by default

    const utts = await readManifestFile(at('data/speech/synth-smoke/16k/train.jsonl'));
    const seen: typeof utts = [];
    for (const batch of bucketByLength(utts, (u) => u.duration!, { batchSize: 16, seed: 0 })) {
      // batch[i].audio is a path relative to the manifest; batch[i].phones = [{start, end, label}, ...]
      expect(batch.length).toBeLessThanOrEqual(16);
      seen.push(...batch);
    }

    const phones = intervalTier(await readTextGridFile(at('u0001.TextGrid')), 'phones');

    const libri = await readLibriSpeech(at('LibriSpeech/dev-clean'));
    // ---- end of the README block

    expect(cleanText(train, { lowercase: true })).toBe('the cat sat.\non the mat.');
    expect(vocab.decode(ids)).toBe('the mat sat.');
    expect(['train', 'valid', 'test']).toContain(split);
    expect(seen.length).toBe(40);
    expect(new Set(seen.map((u) => u.audio)).size).toBe(40);
    expect(utts[0]!.audio).toBe('wav/u0.wav');
    expect(utts[0]!.phones![1]).toEqual({ start: 0.1, end: 0.2, label: 'aɪ' });
    expect(phones.map((p) => p.label)).toEqual(['', 'h', 'ə', 'l', 'oʊ', '']);
    expect(libri.map((u) => [u.id, u.speaker, u.chapter, u.text])).toEqual([
      ['84-121123-0000', '84', '121123', 'GO DO YOU HEAR'],
      ['84-121123-0001', '84', '121123', 'BUT IN LESS'],
    ]);

    // the other two names the README imports
    const tg = parseTextGrid('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<absent>\n');
    expect(tg.tiers).toEqual([]);
    const padded = padBatch([ids, ids.subarray(0, 3)], 0);
    expect(padded.shape).toEqual([2, ids.length]);
    expect(Array.from(padded.lengths)).toEqual([ids.length, 3]);
  });

  it('fails with the typed, located errors the README shows', () => {
    const lines = readFileSync(join(fixtures, 'hello.long.TextGrid'), 'utf8').split('\n');
    // line 43 is xmax of interval 3 of tier "phones"
    expect(lines[42]!.trim()).toBe('xmax = 0.25');
    const bad = lines.map((l, k) => (k === 42 ? l.replace(/=.*/, '= "abc"') : l)).join('\n');
    expect(() => parseTextGrid(bad, { source: 'words.TextGrid' })).toThrow(
      new FormatError('words.TextGrid', 43, 'expected a number (xmax of interval 3 of tier "phones"); got "abc"'),
    );
    // a tier claiming a billion intervals fails where its intervals run out, without allocating for the claim
    const huge = lines.join('\n').replace('intervals: size = 6', 'intervals: size = 1000000000');
    expect(() => parseTextGrid(huge, { source: 'w.TextGrid' })).toThrow(FormatError);
  });
});
