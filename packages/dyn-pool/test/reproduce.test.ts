import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValueError } from '@tessera/tensor-core';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { makeProgram } from '../src/cli.js';
import {
  buildTable,
  checkRecipe,
  childRunner,
  curveMarkdown,
  DEFAULT_GRID,
  parseGrid,
  parseRunLog,
  parseSeeds,
  ReproduceError,
  type RunRecord,
  readCheckpointHead,
  runGrid,
  sourceFlags,
  type TrainRunner,
  tableMarkdown,
} from '../src/reproduce.js';

function text(n: number): string {
  const words = ['the', 'whale', 'ship', 'sea', 'captain', 'a', 'and', 'of', 'white'];
  let x = 777;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(words[(x >> 8) % words.length]!);
  }
  return out.join(' ');
}

async function cli(args: string[], runner?: TrainRunner): Promise<string[]> {
  const lines: string[] = [];
  await makeProgram((l) => lines.push(l), { exitOverride: true, runner }).parseAsync(['node', 'dyn-pool', ...args]);
  return lines;
}

/** `dyn-pool train` in this process, appending what it prints to the log as the child runner does. */
function inProcess(calls: string[][]): TrainRunner {
  return async (args, logPath) => {
    calls.push(args);
    try {
      await makeProgram((l) => appendFileSync(logPath, `${l}\n`), { exitOverride: true }).parseAsync([
        'node',
        'dyn-pool',
        ...args,
      ]);
      return 0;
    } catch (e) {
      appendFileSync(logPath, `${e}\n`);
      return 1;
    }
  };
}

const expectReproduceError = (f: () => unknown, re: RegExp) => {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ReproduceError matching ${re}`).toBeInstanceOf(ReproduceError);
  expect(err).toBeInstanceOf(ValueError);
  expect((err as Error).message).toMatch(re);
};

describe('the configuration grid and seeds', () => {
  it("the default grid is issue #9's table, named as the runs/d256 queue names its runs", () => {
    const g = parseGrid(DEFAULT_GRID);
    expect(g.map((c) => c.name)).toEqual(['none', 'fixed2', 'fixed3', 'fixed4', 'ws', 'unigram', 'entropy', 'gumbel']);
    expect(g.map((c) => c.source)).toEqual([
      'none',
      'fixed',
      'fixed',
      'fixed',
      'whitespace',
      'unigram',
      'entropy',
      'gumbel',
    ]);
    expect(g.map((c) => c.sf)).toEqual([undefined, 2, 3, 4, undefined, undefined, undefined, undefined]);
    expect(g.at(-1)!.alpha).toBe(0.2);
    // the flags each run adds to the recipe
    expect(sourceFlags(g[3]!)).toEqual(['-b', 'fixed', '--sf', '4']);
    expect(sourceFlags(g.at(-1)!)).toEqual(['-b', 'gumbel', '--alpha', '0.2']);
  });

  it('parses names and options; default names follow the source', () => {
    const g = parseGrid(' a=fixed:sf=5 , gumbel:alpha=0.37,u200=unigram:unigram-vocab=200,fixed:sf=7,whitespace');
    expect(g).toEqual([
      { name: 'a', source: 'fixed', sf: 5 },
      { name: 'gumbel', source: 'gumbel', alpha: 0.37 },
      { name: 'u200', source: 'unigram', unigramVocab: 200 },
      { name: 'fixed7', source: 'fixed', sf: 7 },
      { name: 'ws', source: 'whitespace' },
    ]);
    expect(sourceFlags(g[2]!)).toEqual(['-b', 'unigram', '--unigram-vocab', '200']);
  });

  it('refuses unknown sources, options a source does not take, bad values and clashing names', () => {
    expectReproduceError(() => parseGrid('none,bpe'), /'bpe': unknown boundary source 'bpe'; expected one of none/);
    expectReproduceError(() => parseGrid('x=bpe:sf=2'), /unknown boundary source 'bpe'/);
    expectReproduceError(() => parseGrid('whitespace:sf=2'), /'whitespace' takes no options; got 'sf'/);
    expectReproduceError(() => parseGrid('fixed:alpha=0.2'), /'fixed' takes only sf; got 'alpha'/);
    expectReproduceError(() => parseGrid('gumbel:temperature=0.5'), /'gumbel' takes only alpha; got 'temperature'/);
    expectReproduceError(() => parseGrid('fixed:sf'), /sf needs a number/);
    expectReproduceError(() => parseGrid('fixed:sf=two'), /sf needs a number/);
    expectReproduceError(() => parseGrid('fixed:sf=2=3'), /sf needs a number/);
    expectReproduceError(() => parseGrid('fixed:sf=0'), /sf must be an integer ≥ 1; got 0/);
    expectReproduceError(() => parseGrid('fixed:sf=2.5'), /sf must be an integer ≥ 1; got 2.5/);
    expectReproduceError(() => parseGrid('gumbel:alpha=1'), /alpha must be in \(0, 1\); got 1/);
    expectReproduceError(() => parseGrid('unigram:unigram-vocab=1'), /unigram-vocab must be an integer ≥ 2/);
    expectReproduceError(() => parseGrid('fixed:sf=2,f=none,fixed:sf=2'), /the name 'fixed2' appears twice/);
    expectReproduceError(() => parseGrid('../x=none'), /a name is letters, digits/);
    expectReproduceError(() => parseGrid('=none'), /a name is letters, digits/);
    expectReproduceError(() => parseGrid(' , '), /expected \[NAME=\]SOURCE/);
  });

  it('seeds are distinct integers ≥ 0', () => {
    expect(parseSeeds('0,1, 2')).toEqual([0, 1, 2]);
    for (const bad of ['0,-1', 'a', '0,,1', '1.5', '']) expectReproduceError(() => parseSeeds(bad), /expected comma/);
    expectReproduceError(() => parseSeeds('1,1'), /appears twice/);
  });
});

const MiB = 2 ** 20;
const rec = (
  config: string,
  seed: number,
  validBpc: number,
  train: number,
  infer: number,
  tensors: number,
  rss: number,
  sf = 1,
): RunRecord => ({
  config,
  seed,
  steps: 400,
  validBpc,
  shorteningFactor: sf,
  trainTokensPerCpuSecond: train,
  evalTokensPerCpuSecond: infer,
  peakTensorBytes: tensors * MiB,
  peakRssBytes: rss * MiB,
});

describe('the table', () => {
  const configs = parseGrid('none,ws=whitespace,fixed2=fixed:sf=2');
  // Hand-written records; the expected cells below are worked out by hand from them.
  const records = [
    rec('none', 0, 3.0, 1000, 2000, 100, 200),
    rec('none', 1, 3.1, 1200, 2000, 100, 200),
    rec('ws', 0, 3.05, 1500, 3000, 60, 150, 6),
    rec('ws', 1, 3.11, 1440, 4000, 70, 170, 5.5),
    rec('fixed2', 0, 3.2, 0, 2600, 80, 180, 2), // trained 0 tokens: a run resumed after its last step
  ];

  it('Δ is paired by seed, ratios are per-seed ratios averaged, missing runs are listed', () => {
    const t = buildTable(configs, [0, 1], records);
    expect(t.baseline).toBe('none');
    expect(t.missing).toEqual(['fixed2_s1']);
    const [v, ws, f2] = t.rows;
    expect(v!.delta).toEqual([0, 0]);
    expect(v!.trainSpeedRatio).toBe(1);
    // ws: Δ 3.05 − 3.0 = +0.05, 3.11 − 3.1 = +0.01, mean +0.03; half spread (3.11 − 3.05) / 2 = 0.03
    expect(ws!.delta[0]).toBeCloseTo(0.05, 12);
    expect(ws!.delta[1]).toBeCloseTo(0.01, 12);
    expect(ws!.meanDelta).toBeCloseTo(0.03, 12);
    expect(ws!.mean).toBeCloseTo(3.08, 12);
    expect(ws!.halfSpread).toBeCloseTo(0.03, 12);
    expect(ws!.shorteningFactor).toBeCloseTo(5.75, 12);
    // train 1500 / 1000 = 1.5, 1440 / 1200 = 1.2 → 1.35; inference 1.5, 2 → 1.75
    expect(ws!.trainSpeedRatio).toBeCloseTo(1.35, 12);
    expect(ws!.inferenceSpeedRatio).toBeCloseTo(1.75, 12);
    // tensors 0.6, 0.7 → 0.65; RSS 0.75, 0.85 → 0.8
    expect(ws!.peakTensorRatio).toBeCloseTo(0.65, 12);
    expect(ws!.peakRssRatio).toBeCloseTo(0.8, 12);
    // fixed2: seed 0 only, its train rate unknown (0), the rest from seed 0
    expect(f2!.bpc).toEqual([3.2, null]);
    expect(f2!.delta[0]).toBeCloseTo(0.2, 12);
    expect(f2!.delta[1]).toBeNull();
    expect(f2!.trainSpeedRatio).toBeNull();
    expect(f2!.inferenceSpeedRatio).toBeCloseTo(1.3, 12);
    expect(f2!.peakTensorRatio).toBeCloseTo(0.8, 12);

    const md = tableMarkdown(t).split('\n');
    expect(md[0]).toBe(
      '| model | seed 0 | seed 1 | mean ± | Δ vs vanilla (seed 0 / 1) | SF (valid) | train × vanilla | inference × vanilla | peak tensors × vanilla | peak RSS × vanilla |',
    );
    expect(md[2]).toBe(
      '| vanilla | 3.000 | 3.100 | 3.050 ± 0.050 | +0.000 (+0.000 / +0.000) | 1.00 | 1.00 (1100 tok/CPU-s) | 1.00 (2000 tok/CPU-s) | 1.00 (100.0 MiB) | 1.00 (200.0 MiB) |',
    );
    expect(md[3]).toBe(
      '| whitespace | 3.050 | 3.110 | 3.080 ± 0.030 | +0.030 (+0.050 / +0.010) | 5.75 | 1.35 | 1.75 | 0.65 | 0.80 |',
    );
    expect(md[4]).toBe(
      '| fixed SF=2 | 3.200 | — | 3.200 ± 0.000 | +0.200 (+0.200 / —) | 2.00 | — | 1.30 | 0.80 | 0.90 |',
    );
    expect(md.join('\n')).toMatch(/Not finished \(left out\): fixed2_s1\./);
  });

  it('another baseline by name; without one, Δ and ratios are empty; an unknown baseline is an error', () => {
    const t = buildTable(configs, [0, 1], records, { baseline: 'ws' });
    expect(t.rows[0]!.delta[0]).toBeCloseTo(-0.05, 12);
    expect(tableMarkdown(t).split('\n')[0]).toMatch(
      /\| Δ vs whitespace \(seed 0 \/ 1\) \| SF \(valid\) \| train × whitespace \|/,
    );
    const none = buildTable(parseGrid('ws=whitespace'), [0], records);
    expect(none.baseline).toBeNull();
    expect(none.rows[0]!.meanDelta).toBeNull();
    expect(tableMarkdown(none).split('\n')[2]).toBe(
      '| whitespace | 3.050 | 3.050 ± 0.000 | — | 6.00 | — | — | — | — |',
    );
    expectReproduceError(() => buildTable(configs, [0], records, { baseline: 'gumbel' }), /baseline 'gumbel' is not/);
  });
});

describe('run logs', () => {
  const json = JSON.stringify({
    boundary: 'whitespace',
    steps: 400,
    trainBpc: 2.5,
    validBpc: 2.61,
    shorteningFactor: 6,
    trainTokensPerSecond: 900,
    trainTokensPerCpuSecond: 1000,
    evalTokensPerSecond: 1900,
    evalTokensPerCpuSecond: 2000,
    trainSeconds: 10,
    peakRssBytes: 5e8,
    peakTensorBytes: 2e8,
    checkpoint: 'runs/d256/ws_s0.ckpt',
  });
  // the lead's runs/d256 layout: everything train printed, appended over resumes, the JSON summary last
  const log = [
    'whitespace: 6382718 parameters, vocabulary 126, 1541749 training / 110119 validation characters',
    'step 100: train 3.100 bpc, valid 3.200 bpc',
    'resuming runs/d256/ws_s0.ckpt at step 120 of 400',
    'step 200: train 2.900 bpc, valid 2.950 bpc',
    json,
    '',
  ].join('\n');

  it('a finished log gives its record; a running, killed or cut-off one gives null', () => {
    expect(parseRunLog(log, 'ws', 0)).toEqual({
      config: 'ws',
      seed: 0,
      steps: 400,
      validBpc: 2.61,
      shorteningFactor: 6,
      trainTokensPerCpuSecond: 1000,
      evalTokensPerCpuSecond: 2000,
      peakRssBytes: 5e8,
      peakTensorBytes: 2e8,
      curve: [
        { step: 100, validBpc: 3.2 },
        { step: 200, validBpc: 2.95 },
      ],
    });
    expect(parseRunLog(log.split('\n').slice(0, 4).join('\n'), 'ws', 0)).toBeNull();
    expect(parseRunLog(`${log}\n${json.slice(0, 30)}`, 'ws', 0)).toBeNull();
    expect(parseRunLog('', 'ws', 0)).toBeNull();
  });

  it('the learning curve: eval lines in step order, a step logged again after a resume counted once', () => {
    const resumed = log.replace('resuming', 'step 200: train 2.900 bpc, valid 2.950 bpc\nresuming');
    expect(parseRunLog(resumed, 'ws', 0)!.curve).toEqual([
      { step: 100, validBpc: 3.2 },
      { step: 200, validBpc: 2.95 },
    ]);
    const c = (config: string, seed: number, curve: [number, number][]): RunRecord => ({
      ...rec(config, seed, 3, 1, 1, 1, 1),
      curve: curve.map(([step, validBpc]) => ({ step, validBpc })),
    });
    const recs = [
      c('none', 0, [
        [100, 3.2],
        [200, 3.0],
      ]),
      c('none', 1, [[100, 3.4]]),
      c('ws', 0, [
        [100, 3.3],
        [200, 3.05],
      ]),
      c('ws', 1, []),
    ];
    const md = curveMarkdown(parseGrid('none,ws=whitespace,fixed:sf=2'), [0, 1], recs, 'none').split('\n');
    expect(md[0]).toBe('| step | vanilla | whitespace | fixed SF=2 |');
    // step 100: vanilla (3.2 + 3.4) / 2; whitespace seed 0 only, Δ against vanilla's seed 0
    expect(md[2]).toBe('| 100 | 3.300 | 3.300 (+0.100) | — |');
    expect(md[3]).toBe('| 200 | 3.000 | 3.050 (+0.050) | — |');
    expect(curveMarkdown(parseGrid('none'), [0], [rec('none', 0, 3, 1, 1, 1, 1)], 'none')).toBe('');
  });

  it('a JSON last line without the summary numbers is an error, not a silent gap', () => {
    expectReproduceError(() => parseRunLog('{"bpc": 2.5}\n', 'ws', 0), /no number 'steps'.*train --json/);
  });

  it('--collect tabulates a runs/d256-style directory (hand-written logs, no checkpoints)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-collect-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const summary = (validBpc: number, boundary: string, sf: number) =>
      JSON.stringify({ ...JSON.parse(json), boundary, validBpc, shorteningFactor: sf });
    writeFileSync(join(dir, 'none_s0.log'), `none: 1 parameters\n${summary(2.5, 'none', 1)}\n`);
    writeFileSync(join(dir, 'ws_s0.log'), `ws\n${summary(2.625, 'whitespace', 6)}\n`);
    writeFileSync(join(dir, 'gumbel_s0.log'), 'gumbel: 1 parameters\nstep 100: train 3.1 bpc, valid 3.2 bpc\n');
    const out = await cli(['reproduce', '--collect', '-d', dir, '--seeds', '0']);
    const md = out.join('\n');
    expect(md).toMatch(/\| vanilla \| 2\.500 \| 2\.500 ± 0\.000 \| \+0\.000 \|/);
    expect(md).toMatch(/\| whitespace \| 2\.625 \| 2\.625 ± 0\.000 \| \+0\.125 \| 6\.00 \| 1\.00 \|/);
    expect(md).toMatch(/\| Gumbel α=0\.2 \| — \|/);
    expect(md).toMatch(/Not finished \(left out\): fixed2_s0, fixed3_s0, fixed4_s0, unigram_s0, entropy_s0, gumbel_s0/);
    const j = JSON.parse(readFileSync(join(dir, 'reproduce.json'), 'utf8'));
    expect(j.records).toHaveLength(2);
    expect(readFileSync(join(dir, 'reproduce.md'), 'utf8')).toBe(`${out[0]}`);
    await expect(cli(['reproduce', '--collect', '-d', join(dir, 'nope')])).rejects.toThrow(/no such directory/);
  });

  it("the package's Node entry (@tessera/dyn-pool/node) is this job: its collectRuns and buildTable read the same runs", async () => {
    const node = await import('@tessera/dyn-pool/node');
    expect(node.runGrid).toBe(runGrid);
    expect(node.buildTable).toBe(buildTable);
    const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-node-entry-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const summary = (validBpc: number, boundary: string) => JSON.stringify({ ...JSON.parse(json), boundary, validBpc });
    writeFileSync(join(dir, 'none_s0.log'), `${summary(2.5, 'none')}\n`);
    writeFileSync(join(dir, 'ws_s0.log'), `${summary(2.75, 'whitespace')}\n`);
    const configs = node.parseGrid('none,ws=whitespace');
    const { records } = node.collectRuns(dir, configs, node.parseSeeds('0'));
    const t = node.buildTable(configs, [0], records);
    expect(t.rows.map((r) => [r.name, r.meanDelta])).toEqual([
      ['none', 0],
      ['ws', 0.25],
    ]);
  });
});

describe('the resumable job', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dyn-pool-reproduce-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'text.txt');
  writeFileSync(file, text(1500));
  const tiny = ['--d-model', '16', '--heads', '2', '--seq-len', '32', '--batch', '2', '--eval-tokens', '256'];
  const recipe = [...tiny, '--steps', '2', '--warmup', '1'];

  it('trains what is not finished, skips what is, and resumes a killed run bit-exactly', async () => {
    const runs = join(dir, 'runs');
    const calls: string[][] = [];
    const args = ['reproduce', file, '-d', runs, '--configs', 'none,ws=whitespace', '--seeds', '0', ...recipe];
    const first = await cli(args, inProcess(calls));
    expect(calls.map((a) => a[a.indexOf('-o') + 1])).toEqual([join(runs, 'none_s0.ckpt'), join(runs, 'ws_s0.ckpt')]);
    expect(calls[1]).toEqual(expect.arrayContaining(['--resume', '--json', '--seed', '0', '-b', 'whitespace']));
    expect(first.join('\n')).toMatch(/\| whitespace \| \d\.\d{3} \|/);

    // a second invocation finds both finished and trains nothing
    calls.length = 0;
    const again = await cli(args, inProcess(calls));
    expect(calls).toEqual([]);
    expect(again.filter((l) => l.includes('skipped'))).toHaveLength(2);
    expect(again.at(-2)).toBe(first.at(-2)); // the same table

    // a run killed after its first step: its log ends without the summary of all 2 steps
    const killed = ['train', file, '-o', join(runs, 'fixed2_s0.ckpt'), '-b', 'fixed', '--sf', '2', '--seed', '0'];
    const flags = JSON.parse(readFileSync(join(runs, 'reproduce.recipe.json'), 'utf8')).flags as string[];
    await inProcess([])(
      [...killed, ...flags, '--stop-at', '1', '--no-progress', '--json'],
      join(runs, 'fixed2_s0.log'),
    );
    calls.length = 0;
    const grid = ['--configs', 'none,ws=whitespace,fixed2=fixed:sf=2'];
    await cli([...args, ...grid], inProcess(calls));
    expect(calls).toHaveLength(1);
    expect(readFileSync(join(runs, 'fixed2_s0.log'), 'utf8')).toMatch(/resuming .*fixed2_s0\.ckpt at step 1 of 2/);
    // the same run in one go, in another directory
    const fresh = join(dir, 'fresh');
    await cli(
      ['reproduce', file, '-d', fresh, '--configs', 'fixed2=fixed:sf=2', '--seeds', '0', ...recipe],
      inProcess([]),
    );
    expect(
      Buffer.compare(readFileSync(join(runs, 'fixed2_s0.ckpt')), readFileSync(join(fresh, 'fixed2_s0.ckpt'))),
    ).toBe(0);
    expect(parseRunLog(readFileSync(join(runs, 'fixed2_s0.log'), 'utf8'), 'fixed2', 0)!.validBpc).toBe(
      parseRunLog(readFileSync(join(fresh, 'fixed2_s0.log'), 'utf8'), 'fixed2', 0)!.validBpc,
    );

    // the directory keeps its recipe: other flags are refused rather than mixed into one table
    await expect(cli([...args, '--lr', '0.01'], inProcess([]))).rejects.toThrow(/started with another recipe/);
  });

  it('a run another live process holds is left to it; a lock whose process is gone is taken over', async () => {
    const runs = join(dir, 'locks');
    mkdirSync(runs);
    const cfg = parseGrid('none,ws=whitespace');
    writeFileSync(join(runs, 'none_s0.lock'), String(process.pid));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(runs, 'ws_s0.lock'), String(dead));
    const calls: string[][] = [];
    const res = await runGrid({
      text: file,
      dir: runs,
      configs: cfg,
      seeds: [0],
      recipe,
      steps: 2,
      runner: inProcess(calls),
    });
    expect(res).toEqual({ trained: ['ws_s0'], skipped: [], busy: ['none_s0'], failed: [] });
    expect(existsSync(join(runs, 'ws_s0.lock'))).toBe(false);
    expect(existsSync(join(runs, 'none_s0.lock'))).toBe(true);
  });

  it('a run that fails is reported and the others still run', async () => {
    const runs = join(dir, 'fail');
    mkdirSync(runs);
    const res = await runGrid({
      text: file,
      dir: runs,
      configs: parseGrid('none,ws=whitespace'),
      seeds: [0],
      // a window longer than the text: train refuses it
      recipe: ['--d-model', '16', '--heads', '2', '--seq-len', '100000', '--batch', '2', '--steps', '2'],
      steps: 2,
      runner: inProcess([]),
    });
    expect(res.failed).toEqual(['none_s0', 'ws_s0']);
    expect(readFileSync(join(runs, 'none_s0.log'), 'utf8')).toMatch(/100001 are needed/);
  });

  it("every run gets the whole resolved recipe, the CLI's defaults included (lr 6e-3, warm-up 10 % of the steps)", async () => {
    const runs = join(dir, 'defaults');
    const calls: string[][] = [];
    await cli(
      ['reproduce', file, '-d', runs, '--configs', 'none', '--seeds', '3', ...tiny, '--steps', '20'],
      inProcess(calls),
    );
    const a = calls[0]!;
    expect(a[a.indexOf('--lr') + 1]).toBe('0.006');
    expect(a[a.indexOf('--layers') + 1]).toBe('1,2,1');
    expect(a).not.toContain('--warmup'); // left to train's default
    const head = readCheckpointHead(join(runs, 'none_s3.ckpt'))!;
    expect(head.train).toEqual({
      batchSize: 2,
      seqLen: 32,
      lr: 0.006,
      warmup: 2,
      steps: 20,
      clip: 0.25,
      corpus: {
        trainChars: expect.any(Number),
        validChars: expect.any(Number),
        hash: expect.stringMatching(/^[0-9a-f]{14}$/),
      },
    });
    expect(head.model.dModel).toBe(16);
    expect(readCheckpointHead(join(runs, 'nope.ckpt'))).toBeNull();
    expectReproduceError(() => readCheckpointHead(join(runs, 'none_s3.log')), /not a checkpoint/);
  });

  it('checkRecipe writes the recipe once and refuses another', () => {
    const runs = join(dir, 'recipe');
    mkdirSync(runs);
    checkRecipe(runs, { text: 'a.txt', flags: ['--lr', '0.003'] });
    checkRecipe(runs, { text: 'a.txt', flags: ['--lr', '0.003'] });
    expectReproduceError(() => checkRecipe(runs, { text: 'a.txt', flags: ['--lr', '0.006'] }), /another recipe/);
  });

  it('bad input to the command: no text, a missing file, an unknown source', async () => {
    await expect(cli(['reproduce', '-d', join(dir, 'x')])).rejects.toThrow(/needs the training <text>/);
    await expect(cli(['reproduce', join(dir, 'nope.txt'), '-d', join(dir, 'x')])).rejects.toThrow(/no such file/);
    await expect(cli(['reproduce', file, '-d', join(dir, 'x'), '--configs', 'none,bpe'])).rejects.toThrow(
      ReproduceError,
    );
    await expect(cli(['reproduce', file, '-d', join(dir, 'x'), '--seeds', '0,x'])).rejects.toThrow(/seeds: expected/);
  });

  it('the default runner trains in a child process and appends its output to the log', async () => {
    const runs = join(dir, 'child');
    mkdirSync(runs);
    const res = await runGrid({
      text: file,
      dir: runs,
      configs: parseGrid('ws=whitespace'),
      seeds: [1],
      recipe,
      steps: 2,
      runner: childRunner({ execArgv: ['--conditions=@tessera/source', '--import', 'tsx'] }),
    });
    expect(res.trained).toEqual(['ws_s1']);
    const log = readFileSync(join(runs, 'ws_s1.log'), 'utf8');
    expect(log).toMatch(/^no checkpoint at .* starting a new run\nwhitespace: \d+ parameters/);
    const r = parseRunLog(log, 'ws', 1)!;
    expect(r.steps).toBe(2);
    expect(r.peakRssBytes).toBeGreaterThan(0);
    // the same run in this process gives the same BPC: the child ran the same train command
    const here = join(dir, 'child-here');
    mkdirSync(here);
    await runGrid({
      text: file,
      dir: here,
      configs: parseGrid('ws=whitespace'),
      seeds: [1],
      recipe,
      steps: 2,
      runner: inProcess([]),
    });
    expect(parseRunLog(readFileSync(join(here, 'ws_s1.log'), 'utf8'), 'ws', 1)!.validBpc).toBe(r.validBpc);
  }, 60_000);
});
