import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest, splitOf } from '@tessera/datasets';
import { describe, expect, onTestFinished, test } from 'vitest';
import { type BuildOptions, build } from '../src/build.js';
import { fetchDeb, fetchNpm } from '../src/fetch.js';
import type { TextSource } from '../src/sources.js';
import type { Engine } from '../src/speech.js';
import { MissingToolError, requireTool } from '../src/tools.js';

const words = 'the whale sea ship captain white water deep long voyage'.split(' ');
const fakeSources: TextSource[] = [
  {
    id: 'fake-a',
    lang: 'en',
    from: 'test fake-a',
    read: () =>
      Array.from({ length: 300 }, (_, i) => ({
        id: `a:${i}`,
        splitKey: `a:${i}`,
        text: `Docu\u0301ment ${i}:  ${Array.from({ length: 40 }, (_, k) => words[(i * 7 + k) % words.length]).join(' ')}.`,
      })),
  },
  {
    id: 'fake-missing',
    lang: 'en',
    from: 'deb not-installed',
    read: () => {
      throw new MissingToolError('apt-get', 'fetching the Debian package not-installed');
    },
  },
  {
    id: 'fake-he',
    lang: 'he',
    from: 'test fake-he',
    read: () => [{ id: 'he:1', splitKey: 'bible:Gen', text: 'בְּרֵאשִׁ֖ית בָּרָ֣א' }],
  },
];

/** A deterministic stand-in for espeak: a tone per phone, with phone and word events at 1 ms resolution. */
const fakeEngine: Engine = {
  name: 'fake',
  synth(text, voice, p) {
    const rate = 22050;
    const ws = text.split(' ');
    const events = [];
    let ms = 20;
    let pos = 1;
    for (const w of ws) {
      events.push({ type: 'word', audio_position: ms, text_position: pos, word_length: w.length, id: 0 });
      for (const ch of w.replace(/[^a-z]/gi, '').slice(0, 4)) {
        events.push({
          type: 'phoneme',
          audio_position: ms,
          text_position: pos,
          word_length: 0,
          id: `ˈ${ch.toLowerCase()}`,
        });
        ms += Math.round(30 + (p.rate % 20));
      }
      events.push({ type: 'phoneme', audio_position: ms, text_position: pos + w.length, word_length: 0, id: '' });
      ms += 10;
      pos += w.length + 1;
    }
    const n = Math.round(((ms + 30) / 1000) * rate);
    const f0 = voice.includes('+f') ? 200 : 110;
    const samples = Int16Array.from({ length: n }, (_, i) =>
      Math.round(8000 * Math.sin((2 * Math.PI * (f0 + p.pitch) * i) / rate)),
    );
    return { samples, sampleRate: rate, events };
  },
};

function opts(data: string, o: Partial<BuildOptions> = {}): BuildOptions {
  return {
    data,
    steps: ['text'],
    langs: ['en', 'he'],
    lowercase: false,
    seed: 0,
    force: false,
    sliceBytes: 20_000,
    log: () => {},
    sources: fakeSources,
    ...o,
  };
}

describe('corpus builder', () => {
  test('text: cleaned, split 90/5/5 by document key, slice, manifest; missing tools reported, the rest built', async () => {
    const data = mkdtempSync(join(tmpdir(), 'corpus-'));
    onTestFinished(() => rmSync(data, { recursive: true, force: true }));
    const r = await build(opts(data));
    expect(r.failed).toEqual([]);
    expect(r.missing).toEqual([
      expect.stringContaining(
        'apt-get not found on PATH; fetching the Debian package not-installed needs it. Install a Debian or Ubuntu system with apt',
      ),
    ]);
    const docs = readFileSync(join(data, 'text/en/docs.tsv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t'));
    expect(docs.length).toBe(300);
    for (const [id, split] of docs) expect(split).toBe(splitOf(id!));
    const train = readFileSync(join(data, 'text/en/train.txt'), 'utf8');
    expect(train).toContain('Doc\u00fament 0: the whale'); // NFC, spaces collapsed
    expect(train.split('\n\n').length).toBe(docs.filter((d) => d[1] === 'train').length);
    expect(
      readFileSync(join(data, 'text/he/train.txt'), 'utf8') +
        readFileSync(join(data, 'text/he/valid.txt'), 'utf8') +
        readFileSync(join(data, 'text/he/test.txt'), 'utf8'),
    ).toBe('בראשית ברא\n');
    const slice = statSync(join(data, 'text/en-slice/train.txt')).size;
    expect(slice).toBeGreaterThan(15_000);
    expect(slice).toBeLessThanOrEqual(20_000 + 400);
    const m = JSON.parse(readFileSync(join(data, 'MANIFEST.json'), 'utf8'));
    expect(m.steps.text.skipped[0].source).toBe('fake-missing (deb not-installed)');
    expect(m.steps.text.outputs['text/en/train.txt'].bytes).toBe(Buffer.byteLength(train));
    expect(m.steps.text.outputs['text/en/train.txt'].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test('idempotent: a second run skips, a forced run writes the same bytes', async () => {
    const data = mkdtempSync(join(tmpdir(), 'corpus-'));
    onTestFinished(() => rmSync(data, { recursive: true, force: true }));
    await build(opts(data));
    const manifest = readFileSync(join(data, 'MANIFEST.json'));
    const mtime = statSync(join(data, 'text/en/train.txt')).mtimeMs;
    const logs: string[] = [];
    await build(opts(data, { log: (m) => logs.push(m) }));
    expect(logs).toContain('text: up to date');
    await build(opts(data, { force: true }));
    expect(readFileSync(join(data, 'MANIFEST.json'))).toEqual(manifest);
    expect(statSync(join(data, 'text/en/train.txt')).mtimeMs).toBe(mtime);
    // a changed option rebuilds
    const logs2: string[] = [];
    await build(opts(data, { lowercase: true, log: (m) => logs2.push(m) }));
    expect(logs2).not.toContain('text: up to date');
    expect(readFileSync(join(data, 'text/en/train.txt'), 'utf8')).toContain('doc\u00fament 0:');
  });

  test('speech: held-out voices, both rates, exact alignments, deterministic', async () => {
    const data = mkdtempSync(join(tmpdir(), 'corpus-'));
    onTestFinished(() => rmSync(data, { recursive: true, force: true }));
    const prompts = {
      train: ['The whale swam far away today.', 'A ship sailed into the deep sea.'],
      test: ['The captain looked at the water.'],
    };
    const { synthesize, writeSpeechSet, TEST_VOICES } = await import('../src/speech.js');
    const spec = { name: 't', trainSeconds: 6, testSeconds: 2, rates: [16000, 22050], noise: true, seed: 3 };
    const u1 = synthesize(fakeEngine, prompts, spec, () => {});
    writeSpeechSet(join(data, 'a'), u1, spec.rates);
    writeSpeechSet(
      join(data, 'b'),
      synthesize(fakeEngine, prompts, spec, () => {}),
      spec.rates,
    );
    for (const f of ['16k/train.jsonl', '22k/test.jsonl', 'alignments.txt', 'frames.txt', '16k/wav/train-00000.wav']) {
      expect(readFileSync(join(data, 'b', f))).toEqual(readFileSync(join(data, 'a', f)));
    }
    const test16 = parseManifest(readFileSync(join(data, 'a/16k/test.jsonl'), 'utf8'));
    const train22 = parseManifest(readFileSync(join(data, 'a/22k/train.jsonl'), 'utf8'));
    expect(new Set(test16.map((e) => e.speaker))).toEqual(new Set(TEST_VOICES));
    expect(train22.some((e) => TEST_VOICES.includes(e.speaker!))).toBe(false);
    const sum = (es: typeof test16) => es.reduce((s, e) => s + e.duration!, 0);
    expect(sum(train22)).toBeGreaterThanOrEqual(6);
    const e = train22[0]!;
    expect(e.phones![0]!.start).toBe(0);
    expect(e.phones![e.phones!.length - 1]!.end).toBeCloseTo(e.duration!, 3);
    for (let i = 1; i < e.phones!.length; i++) expect(e.phones![i]!.start).toBeCloseTo(e.phones![i - 1]!.end, 9);
    expect(e.phones!.map((p) => p.label).join(' ')).toMatch(/^sil t h e sil w h a l sil/);
    expect(e.words!.map((w) => w.label).join(' ')).toBe(e.text);
    expect(e.extra!.snr).toBeGreaterThanOrEqual(10);
    const wav16 = readFileSync(join(data, 'a/16k', e.audio));
    expect(wav16.readUInt32LE(24)).toBe(16000);
  });

  test('without npm and apt every real step says what to install, and the build still finishes', async () => {
    const data = mkdtempSync(join(tmpdir(), 'corpus-'));
    onTestFinished(() => rmSync(data, { recursive: true, force: true }));
    const path = process.env.PATH;
    process.env.PATH = '';
    try {
      const r = await build({
        ...opts(data),
        sources: undefined,
        steps: ['text', 'parallel', 'speech-smoke', 'flite-smoke', 'real'],
        langs: ['en', 'he'],
      });
      expect(r.failed).toEqual([]);
      expect(r.missing.some((m) => m.startsWith('text/sotu') && m.includes('Install npm'))).toBe(true);
      expect(r.missing.some((m) => m.startsWith('text/oshb') && m.includes('apt-get not found'))).toBe(true);
      expect(r.missing.some((m) => m.startsWith('speech-smoke:') && m.includes('npm not found'))).toBe(true);
      expect(r.missing.some((m) => m.startsWith('real:') && m.includes('apt-get not found'))).toBe(true);
      expect(r.missing.some((m) => m.startsWith('flite-smoke:') && m.includes('apt-get not found'))).toBe(true);
      expect(JSON.parse(readFileSync(join(data, 'MANIFEST.json'), 'utf8')).steps.real.error).toMatch(/apt-get/);
    } finally {
      process.env.PATH = path;
    }
  });

  test('missing tools name what to install', () => {
    const env = { PATH: '' };
    expect(() => requireTool('npm', 'fetching x', env)).toThrow(
      /npm not found on PATH; fetching x needs it\. Install npm \(comes with Node\.js/,
    );
    expect(() => requireTool('dpkg-deb', 'unpacking y', env)).toThrow(/apt-get install dpkg/);
    const data = mkdtempSync(join(tmpdir(), 'corpus-'));
    onTestFinished(() => rmSync(data, { recursive: true, force: true }));
    const path = process.env.PATH;
    process.env.PATH = '';
    try {
      expect(() => fetchNpm('left-pad', '1.3.0', data)).toThrow(MissingToolError);
      expect(() => fetchDeb('fortunes', data, () => {})).toThrow(/apt-get not found/);
    } finally {
      process.env.PATH = path;
    }
  });
});
