import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FormatError,
  formatManifest,
  formatTextGrid,
  LimitError,
  readLibriSpeech,
  readLines,
  readManifestFile,
  readTextCorpus,
  readTextGridFile,
  readWavInfoFile,
} from '@tessera/datasets/node';
import { afterAll, describe, expect, test } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'tessera-datasets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('node readers', () => {
  test('readLines splits across chunks and bounds line length', async () => {
    const p = join(dir, 'lines.txt');
    const long = 'x'.repeat(200_000);
    writeFileSync(p, `a\r\n${long}\nżółw\nlast`);
    const got: [string, number][] = [];
    for await (const l of readLines(p)) got.push(l);
    expect(got.map(([s, n]) => [s.length, n])).toEqual([
      [1, 1],
      [200_000, 2],
      [4, 3],
      [4, 4],
    ]);
    await expect(async () => {
      for await (const _ of readLines(p, { maxLineBytes: 1000 })) void _;
    }).rejects.toThrow(LimitError);
  });

  test('manifest file: entries, and the line of a bad one', async () => {
    const p = join(dir, 'm.jsonl');
    writeFileSync(p, formatManifest([{ audio: 'a.wav', text: 'x' }, { audio: 'b.wav' }]));
    expect((await readManifestFile(p)).map((e) => e.audio)).toEqual(['a.wav', 'b.wav']);
    writeFileSync(p, '{"audio":"a.wav"}\n{"audio":1}\n');
    await expect(readManifestFile(p)).rejects.toThrow(/m\.jsonl:2: "audio"/);
  });

  test('TextGrid file in UTF-16 with BOM', async () => {
    const p = join(dir, 'u16.TextGrid');
    const tg = {
      xmin: 0,
      xmax: 1,
      tiers: [
        { kind: 'interval' as const, name: 'phones', xmin: 0, xmax: 1, intervals: [{ start: 0, end: 1, label: 'ʃ' }] },
      ],
    };
    writeFileSync(p, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(formatTextGrid(tg), 'utf16le')]));
    expect(await readTextGridFile(p)).toEqual(tg);
    await expect(readTextGridFile(p, { maxBytes: 10 })).rejects.toThrow(LimitError);
  });

  test('text corpus folder', async () => {
    const c = join(dir, 'corpus');
    mkdirSync(c);
    writeFileSync(join(c, 'train.txt'), 'abc');
    writeFileSync(join(c, 'test.txt'), 'z');
    expect(await readTextCorpus(c)).toEqual({ train: 'abc', valid: '', test: 'z' });
  });

  test('LibriSpeech-style folder with WAV headers', async () => {
    const root = join(dir, 'libri');
    const ch = join(root, '84', '121123');
    mkdirSync(ch, { recursive: true });
    writeFileSync(
      join(ch, '84-121123.trans.txt'),
      '84-121123-0001 GO DO YOU HEAR\n84-121123-0000 BUT IN LESS THAN FIVE MINUTES\n84-121123-0002 MISSING AUDIO\n',
    );
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36 + 3200, 4);
    header.write('WAVEfmt ', 8);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22);
    header.writeUInt32LE(16000, 24);
    header.writeUInt32LE(32000, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    header.writeUInt32LE(3200, 40);
    const wavBytes = Buffer.concat([header, Buffer.alloc(3200)]);
    writeFileSync(join(ch, '84-121123-0000.wav'), wavBytes);
    writeFileSync(join(ch, '84-121123-0001.flac'), 'fLaC');
    const utts = await readLibriSpeech(root);
    expect(utts.map((u) => [u.id, u.speaker, u.chapter, u.text])).toEqual([
      ['84-121123-0000', '84', '121123', 'BUT IN LESS THAN FIVE MINUTES'],
      ['84-121123-0001', '84', '121123', 'GO DO YOU HEAR'],
    ]);
    expect((await readWavInfoFile(utts[0]!.audio)).duration).toBeCloseTo(0.1, 9);
    expect((await readLibriSpeech(root, { requireAudio: false })).length).toBe(3);
    writeFileSync(join(ch, '84-121123.trans.txt'), '84-121123-0000 OK\n99-1-2 WRONG\n');
    await expect(readLibriSpeech(root)).rejects.toThrow(FormatError);
    await expect(readLibriSpeech(root)).rejects.toThrow(/84-121123\.trans\.txt:2:/);
  });
});
