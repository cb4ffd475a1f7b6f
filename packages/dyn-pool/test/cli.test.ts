import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, noGrad, tensor } from '@tessera/tensor-core';
import { afterAll, describe, expect, it } from 'vitest';
import { makeProgram } from '../src/cli.js';
import {
  type BoundarySource,
  type Corpus,
  evaluate,
  generate,
  type HourglassConfig,
  HourglassLM,
  loadTrained,
  prepareCorpus,
  train,
} from '../src/index.js';

function text(n: number): string {
  const words = ['the', 'whale', 'ship', 'sea', 'captain', 'a', 'and', 'of', 'white'];
  let x = 12345;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(words[(x >> 8) % words.length]!);
  }
  return out.join(' ');
}

/** A tiny model (d 16, 2 heads, 1 + 1 + 1 blocks, sequence 16) on a prepared corpus. */
function tinyModel(corpus: Corpus, boundary: BoundarySource, extra: Partial<HourglassConfig> = {}): HourglassLM {
  return new HourglassLM({
    vocabSize: corpus.vocab.size,
    dModel: 16,
    nHeads: 2,
    layers: [1, 1, 1],
    boundary,
    spaceIds: corpus.vocab.spaceIds(),
    fixedK: 2,
    maxSeqLen: 16,
    ...extra,
  });
}

async function run(args: string[]): Promise<string[]> {
  const lines: string[] = [];
  await makeProgram((l) => lines.push(l), { exitOverride: true }).parseAsync(['node', 'dyn-pool', ...args]);
  return lines;
}

describe('training, checkpoints and the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'text.txt');
  writeFileSync(file, text(1500));
  const tiny = [
    '--d-model',
    '16',
    '--heads',
    '2',
    '--seq-len',
    '32',
    '--batch',
    '2',
    '--eval-tokens',
    '256',
    '--no-progress',
  ];

  it('resumes bit-exactly: 4 steps + 4 resumed steps equal 8 steps in one go', async () => {
    const a = join(dir, 'a.ckpt');
    const b = join(dir, 'b.ckpt');
    const args = ['-b', 'gumbel', ...tiny, '--json', '--warmup', '2'];
    await run(['train', file, '-o', a, '--steps', '8', ...args]);
    await run(['train', file, '-o', b, '--steps', '8', '--stop-at', '4', ...args]);
    const resumed = await run(['train', file, '-o', b, '--steps', '8', '--resume', ...args]);
    expect(resumed[0]).toMatch(/resuming .* at step 4 of 8/);
    const ma = loadTrained(readFileSync(a)).model.stateDict();
    const mb = loadTrained(readFileSync(b)).model.stateDict();
    for (const [k, t] of ma) expect(Array.from(mb.get(k)!.dataSync()), k).toEqual(Array.from(t.dataSync()));
    const summary = JSON.parse(resumed.at(-1)!);
    expect(summary.steps).toBe(8);
    expect(summary.validBpc).toBeGreaterThan(0);
    expect(summary.peakRssBytes).toBeGreaterThan(0);
  });

  it('--resume refuses another text, contradicting options and a stop-at behind the checkpoint', async () => {
    const ck = join(dir, 'r.ckpt');
    const args = ['-b', 'whitespace', ...tiny, '--warmup', '1'];
    await run(['train', file, '-o', ck, '--steps', '4', '--stop-at', '2', ...args]);
    const before = readFileSync(ck);
    // The same characters in another order: caught by the corpus fingerprint the checkpoint carries.
    const shuffled = join(dir, 'shuffled.txt');
    writeFileSync(shuffled, text(1500).split(' ').reverse().join(' '));
    await expect(run(['train', shuffled, '-o', ck, '--steps', '4', '--resume', ...args])).rejects.toThrow(
      /this run trained on another text/,
    );
    // Another split of the same text is another corpus too.
    await expect(
      run(['train', file, '-o', ck, '--steps', '4', '--resume', '--valid-fraction', '0.2', ...args]),
    ).rejects.toThrow(/another text/);
    // Characters the run's vocabulary never had.
    const greek = join(dir, 'greek.txt');
    writeFileSync(greek, `αβγ δεζ ${text(1400)}`); // at the start: in the training part
    await expect(run(['train', greek, '-o', ck, '--steps', '4', '--resume', ...args])).rejects.toThrow(
      /6 training characters are outside .*r\.ckpt's vocabulary/,
    );
    await expect(
      run(['train', file, '-o', ck, '--steps', '4', '--resume', ...args, '--d-model', '32', '--lr', '0.001']),
    ).rejects.toThrow(/--d-model 32 \(the checkpoint has 16\); --lr 0.001 \(the checkpoint has 0.006\)/);
    await expect(run(['train', file, '-o', ck, '--steps', '3', '--resume', ...args])).rejects.toThrow(
      /--steps 3 \(the checkpoint's run is 4 steps/,
    );
    await expect(run(['train', file, '-o', ck, '--steps', '4', '--stop-at', '1', '--resume', ...args])).rejects.toThrow(
      /--stop-at 1: .* is already at step 2/,
    );
    expect(readFileSync(ck).equals(before)).toBe(true); // nothing above touched the checkpoint
    // The same options (and a larger --steps) resume; a run resumed at its end trains nothing and says so.
    await run(['train', file, '-o', ck, '--steps', '4', '--resume', ...args]);
    const again = await run(['train', file, '-o', ck, '--steps', '4', '--resume', ...args]);
    expect(again.at(-1)).toMatch(/no steps trained/);
    const json = JSON.parse((await run(['train', file, '-o', ck, '--resume', ...args, '--json'])).at(-1)!);
    expect(json.steps).toBe(4);
  });

  it('refuses bounds that cannot train, and a validation text too short for the evaluation before training', async () => {
    const ck = join(dir, 'never.ckpt');
    for (const [flag, v, msg] of [
      ['--clip', '-1', /clip must be a number > 0/],
      ['--clip', '0', /clip must be a number > 0/],
      ['--lr', '0', /lr must be a number > 0/],
      ['--valid-fraction', '0', /valid-fraction must be a number in \(0, 1\)/],
      ['--valid-fraction', '1', /valid-fraction must be a number in \(0, 1\)/],
      ['--dropout', '1', /dropout must be a number in \[0, 1\)/],
    ] as const)
      await expect(run(['train', file, '-o', ck, ...tiny, flag, v]), `${flag} ${v}`).rejects.toThrow(msg);
    const short = join(dir, 'short.txt');
    writeFileSync(short, text(120));
    await expect(run(['train', short, '-o', ck, ...tiny, '--steps', '3'])).rejects.toThrow(
      /validation text has \d+ characters; 33 are needed .*--seq-len 32/,
    );
    await expect(run(['train', file, '-o', ck, ...tiny, '--steps', '3', '--eval-stride', '64'])).rejects.toThrow(
      /stride must be an integer in \[1, 32\]/,
    );
    expect(existsSync(ck)).toBe(false); // refused before any training
  });

  it('evaluates and generates from a checkpoint; unknown characters are reported, or refused with --strict', async () => {
    const ck = join(dir, 'ws.ckpt');
    await run(['train', file, '-o', ck, '--steps', '3', '-b', 'whitespace', ...tiny]);
    const other = join(dir, 'other.txt');
    writeFileSync(other, `${text(100)} zebra`);
    const ev = await run(['eval', ck, other]);
    expect(ev[0]).toMatch(
      /bpc on \d+ characters, SF [\d.]+, \d+ tok\/s; \d+ characters of the text are outside the vocabulary/,
    );
    const split = await run(['eval', ck, other, '--by-word-position']);
    expect(split.slice(1).map((l) => l.split(':')[0]!.trim())).toEqual([
      'whitespace',
      ...['1', '2', '3', '4', '5+'].map((k) => `character ${k} of a word`),
    ]);
    const json = JSON.parse((await run(['eval', ck, other, '--by-word-position', '--json']))[0]!);
    expect(json.byWordPosition.reduce((a: number, b: { characters: number }) => a + b.characters, 0)).toBe(json.tokens);
    await expect(run(['eval', ck, other, '--strict'])).rejects.toThrow(/"z" \(U\+007A\) .* not in the vocabulary/);
    const gen = await run(['generate', ck, '-p', 'the ', '-n', '20', '--seed', '1']);
    expect([...gen.at(-1)!].length).toBe(24);
    expect(gen.at(-1)!.startsWith('the ')).toBe(true);
    // Both contexts draw the same characters while the prompt and the new ones fit in maxSeqLen (here 32).
    expect(await run(['generate', ck, '-p', 'the ', '-n', '20', '--seed', '1', '--window'])).toEqual(gen);
    // --stream writes the prompt, then each character as it is drawn: the same text.
    const chunks: string[] = [];
    await makeProgram(() => {}, { exitOverride: true, write: (c) => chunks.push(c) }).parseAsync([
      'node',
      'dyn-pool',
      ...['generate', ck, '-p', 'the ', '-n', '20', '--seed', '1', '--stream'],
    ]);
    expect(chunks.length).toBe(1 + 20 + 1);
    expect(chunks.join('')).toBe(`${gen.at(-1)}\n`);
  });

  it('refuses empty and non-UTF-8 files with clear errors', async () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    await expect(run(['train', empty, '-o', join(dir, 'e.ckpt'), ...tiny])).rejects.toThrow(/empty text/);
    const bad = join(dir, 'bad.txt');
    writeFileSync(bad, Buffer.from([0x61, 0xfe, 0x62]));
    await expect(run(['train', bad, '-o', join(dir, 'e.ckpt'), ...tiny])).rejects.toThrow(/not valid UTF-8.*offset 1/);
    await expect(run(['train', join(dir, 'nope.txt'), '-o', join(dir, 'e.ckpt')])).rejects.toThrow(/no such file/);
    await expect(run(['train', file, '-o', 'x', '--layers', '1,2'])).rejects.toThrow(/three comma-separated/);
    await expect(run(['train', file, '-o', 'x', '-b', 'bpe'])).rejects.toThrow(/boundary must be one of/);
  });

  it('the unigram source trains its tokenizer and carries it in the checkpoint; long prompts slide', async () => {
    manualSeed(0);
    const corpus = prepareCorpus(text(800), { source: 'unigram', unigramVocab: 40 });
    expect(corpus.tokenizer).not.toBeNull();
    expect(corpus.trainTargets!.length).toBe(corpus.train.length);
    const model = tinyModel(corpus, 'unigram');
    const ck = join(dir, 'u.ckpt');
    const st = await train(model, corpus, { steps: 3, batchSize: 2, seqLen: 16, checkpoint: ck });
    expect(st.shorteningFactor).toBeGreaterThan(0);
    const t = loadTrained(readFileSync(ck));
    expect(t.tokenizer!.encode('the whale')).toEqual(corpus.tokenizer!.encode('the whale'));
    expect(evaluate(t.model, corpus, { seqLen: 16, maxTokens: 64 }).bpc).toBeCloseTo(
      evaluate(model, corpus, { seqLen: 16, maxTokens: 64 }).bpc,
      5,
    );
    const out = generate(t.model, corpus.valid.slice(0, 30), { maxNewTokens: 3, temperature: 0 });
    expect(out.length).toBe(33);
  });

  it("--init normal is recorded in the checkpoint; checkpoints from before the option load as 'torch'", async () => {
    const n = join(dir, 'n.ckpt');
    await run(['train', file, '-o', n, '--steps', '2', '-b', 'whitespace', '--init', 'normal', ...tiny]);
    const t = loadTrained(readFileSync(n));
    expect(t.config.model.init).toBe('normal');
    await expect(run(['train', file, '-o', n, '--init', 'xavier', ...tiny])).rejects.toThrow(/init must be/);
    // a checkpoint written before `init` existed carries none: it was built with the uniform layers
    manualSeed(4);
    const corpus = prepareCorpus(text(200), { source: 'whitespace' });
    const old = tinyModel(corpus, 'whitespace');
    delete (old.config as { init?: string }).init;
    const ck = join(dir, 'old.ckpt');
    await train(old, corpus, { steps: 1, batchSize: 2, seqLen: 16, checkpoint: ck });
    const back = loadTrained(readFileSync(ck));
    expect(back.config.model.init).toBe('torch');
    for (const [k, w] of old.stateDict())
      expect(Array.from(back.model.stateDict().get(k)!.dataSync()), k).toEqual(Array.from(w.dataSync()));
  });

  it('evaluates in overlapping windows: each character scored once, with more context', () => {
    manualSeed(2);
    const corpus = prepareCorpus(text(300), { source: 'fixed' });
    const model = tinyModel(corpus, 'fixed');
    const plain = evaluate(model, corpus, { seqLen: 16, maxTokens: 64 });
    expect(plain.tokens).toBe(64);
    const strided = evaluate(model, corpus, { seqLen: 16, maxTokens: 64, stride: 4 });
    expect(strided.tokens).toBe(64); // 16 + 12 windows × 4
    expect(evaluate(model, corpus, { seqLen: 16, maxTokens: 64, stride: 16 }).bpc).toBeCloseTo(plain.bpc, 6);
    expect(() => evaluate(model, corpus, { seqLen: 16, stride: 17 })).toThrow(/stride must be an integer in \[1, 16\]/);
  });

  it('splits the BPC by word position: counts from the text, each bucket equal to a float64 recomputation', () => {
    manualSeed(3);
    const corpus = prepareCorpus(`${text(300)}, and so\nit ends`, { source: 'whitespace', validFraction: 0.3 });
    const spaceIds = corpus.vocab.spaceIds();
    const model = tinyModel(corpus, 'whitespace');
    const o = { seqLen: 16, maxTokens: 120, stride: 8, byWordPosition: { spaceIds, maxPosition: 3 } };
    const ev = evaluate(model, corpus, o);
    expect(ev.byWordPosition!.map((b) => b.label)).toEqual(['whitespace', '1', '2', '3+']);
    // The windows evaluate() scores: the first scores all 16 positions, later ones their last 8.
    const V = corpus.vocab.size;
    const chars = [...corpus.vocab.decode(corpus.valid)];
    const want = new Map<string, { n: number; nats: number }>();
    for (let s = 0, w = 0; s + 17 <= corpus.valid.length && (s === 0 || s + 8 < 120); s += 8, w++) {
      const ids = tensor(corpus.valid.slice(s, s + 16), { shape: [1, 16], dtype: 'int32' });
      const logits = noGrad(() => model.forward(ids).logits.dataSync());
      for (let t = w === 0 ? 0 : 8; t < 16; t++) {
        const j = s + t + 1;
        // Label from the text itself: characters since the last whitespace character, capped at 3.
        const since = j - chars.slice(0, j + 1).findLastIndex((c, i) => i < j && /\s/u.test(c)) - 1;
        const label = /\s/u.test(chars[j]!) ? 'whitespace' : since + 1 >= 3 ? '3+' : String(since + 1);
        const row = Array.from({ length: V }, (_, c) => logits[t * V + c]!);
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
        const e = want.get(label) ?? { n: 0, nats: 0 };
        e.n++;
        e.nats += lse - row[corpus.valid[j]!]!;
        want.set(label, e);
      }
    }
    for (const b of ev.byWordPosition!) {
      expect(b.characters, b.label).toBe(want.get(b.label)?.n ?? 0);
      expect(b.bpc, b.label).toBeCloseTo(want.get(b.label)!.nats / b.characters / Math.LN2, 4);
    }
    expect(ev.byWordPosition!.reduce((a, b) => a + b.characters, 0)).toBe(ev.tokens);
    const mean = ev.byWordPosition!.reduce((a, b) => a + b.characters * b.bpc, 0) / ev.tokens;
    expect(mean).toBeCloseTo(ev.bpc, 9);
    expect(evaluate(model, corpus, { ...o, byWordPosition: undefined }).bpc).toBe(ev.bpc);
    expect(() => evaluate(model, corpus, { ...o, byWordPosition: { spaceIds, maxPosition: 0 } })).toThrow(
      /maxPosition must be an integer in \[1, 254\]/,
    );
    expect(() => evaluate(model, corpus, { ...o, byWordPosition: { spaceIds: [] } })).toThrow(/whitespace ids/);
  });
});
