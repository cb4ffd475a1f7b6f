// `dyn-pool reproduce`: issue #9's table (Nawrot et al., ACL 2023, arXiv 2211.09761, Table 1 in miniature) as a
// resumable job — a grid of boundary configurations × seeds trained at one shared recipe, each run a `dyn-pool
// train --resume` in its own process (so its throughput and peak memory are its own), then one table of BPC,
// Δ vs vanilla, shortening factor and speed / memory relative to vanilla, built only from finished runs.
import { spawn } from 'node:child_process';
import {
  closeSync,
  createWriteStream,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValueError } from '@tessera/tensor-core';
import { BOUNDARY_SOURCES, type BoundarySource } from './model.js';

/** A bad grid, seed list, run record or recipe: says what was expected and what came. */
export class ReproduceError extends ValueError {
  override name = 'ReproduceError';
}

/** One row of the table: a boundary source with its own options. */
export interface RunConfig {
  /** Run files are `<name>_s<seed>.log` / `.ckpt`. */
  name: string;
  source: BoundarySource;
  /** Fixed pooling's shortening factor (`--sf`). */
  sf?: number;
  /** Gumbel's prior boundary rate α (`--alpha`). */
  alpha?: number;
  /** Unigram tokenizer vocabulary (`--unigram-vocab`). */
  unigramVocab?: number;
}

/** Which options each source takes: anything else in a grid is an error, not silently ignored. */
const SOURCE_OPTIONS: Record<BoundarySource, readonly ('sf' | 'alpha' | 'unigram-vocab')[]> = {
  none: [],
  fixed: ['sf'],
  whitespace: [],
  unigram: ['unigram-vocab'],
  entropy: [],
  gumbel: ['alpha'],
};

/**
 * The issue's table in the README's row order; runs are files `<name>_s<seed>.log` / `.ckpt` (none_s0,
 * fixed2_s0, ws_s0, ...), so one directory holds one corpus's grid.
 */
export const DEFAULT_GRID =
  'none,fixed2=fixed:sf=2,fixed3=fixed:sf=3,fixed4=fixed:sf=4,ws=whitespace,unigram,entropy,gumbel:alpha=0.2';

const NAME = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;

function defaultName(c: Omit<RunConfig, 'name'>): string {
  if (c.source === 'whitespace') return 'ws';
  if (c.source === 'fixed' && c.sf !== undefined) return `fixed${c.sf}`;
  return c.source;
}

/**
 * Parses a grid: comma-separated entries `[NAME=]SOURCE[:OPTION=VALUE]...`, e.g.
 * `none,ws=whitespace,fixed4=fixed:sf=4,gumbel:alpha=0.2`. Options: `sf` (fixed), `alpha` (gumbel),
 * `unigram-vocab` (unigram). The name defaults to the source (`ws` for whitespace, `fixed<sf>` for fixed).
 */
export function parseGrid(spec: string): RunConfig[] {
  const entries = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length === 0)
    throw new ReproduceError(`configs: expected [NAME=]SOURCE[:OPTION=VALUE]...; got '${spec}'`);
  const out: RunConfig[] = [];
  for (const entry of entries) {
    const [head, ...opts] = entry.split(':');
    const eq = head!.indexOf('=');
    const name = eq >= 0 ? head!.slice(0, eq) : undefined;
    const source = (eq >= 0 ? head!.slice(eq + 1) : head!) as BoundarySource;
    if (!BOUNDARY_SOURCES.includes(source))
      throw new ReproduceError(
        `configs: '${entry}': unknown boundary source '${source}'; expected one of ${BOUNDARY_SOURCES.join(', ')}`,
      );
    const c: Omit<RunConfig, 'name'> = { source };
    for (const o of opts) {
      const [key, value, ...rest] = o.split('=');
      const allowed = SOURCE_OPTIONS[source];
      if (!(allowed as readonly string[]).includes(key!))
        throw new ReproduceError(
          `configs: '${entry}': '${source}' takes ${allowed.length ? `only ${allowed.join(', ')}` : 'no options'}; got '${key}'`,
        );
      const n = Number(value);
      if (value === undefined || value === '' || rest.length > 0 || !Number.isFinite(n))
        throw new ReproduceError(`configs: '${entry}': ${key} needs a number (${key}=VALUE); got '${o}'`);
      if (key === 'alpha') {
        if (!(n > 0 && n < 1)) throw new ReproduceError(`configs: '${entry}': alpha must be in (0, 1); got ${n}`);
        c.alpha = n;
      } else {
        if (!(Number.isInteger(n) && n >= (key === 'sf' ? 1 : 2)))
          throw new ReproduceError(
            `configs: '${entry}': ${key} must be an integer ≥ ${key === 'sf' ? 1 : 2}; got ${value}`,
          );
        if (key === 'sf') c.sf = n;
        else c.unigramVocab = n;
      }
    }
    const cfg: RunConfig = { name: name ?? defaultName(c), ...c };
    if (!NAME.test(cfg.name))
      throw new ReproduceError(
        `configs: '${entry}': a name is letters, digits, '.' and '-' (it names the run's files); got '${cfg.name}'`,
      );
    if (out.some((o) => o.name === cfg.name))
      throw new ReproduceError(`configs: the name '${cfg.name}' appears twice; give one of them NAME=`);
    out.push(cfg);
  }
  return out;
}

/** Parses `0,1,2` into distinct non-negative integer seeds. */
export function parseSeeds(spec: string): number[] {
  const parts = spec.split(',').map((s) => s.trim());
  const seeds = parts.map(Number);
  if (parts.some((p) => p === '') || seeds.some((n) => !Number.isInteger(n) || n < 0))
    throw new ReproduceError(`seeds: expected comma-separated integers ≥ 0; got '${spec}'`);
  if (new Set(seeds).size !== seeds.length) throw new ReproduceError(`seeds: a seed appears twice in '${spec}'`);
  return seeds;
}

/** The `train` flags a configuration adds to the shared recipe. */
export function sourceFlags(c: RunConfig): string[] {
  const f = ['-b', c.source];
  if (c.sf !== undefined) f.push('--sf', String(c.sf));
  if (c.alpha !== undefined) f.push('--alpha', String(c.alpha));
  if (c.unigramVocab !== undefined) f.push('--unigram-vocab', String(c.unigramVocab));
  return f;
}

/** A row's label in the table, as the README's tables write it. */
export function configLabel(c: RunConfig): string {
  switch (c.source) {
    case 'none':
      return 'vanilla';
    case 'fixed':
      return `fixed SF=${c.sf ?? 3}`;
    case 'unigram':
      return `unigram (${c.unigramVocab ?? 1000} pieces)`;
    case 'gumbel':
      return `Gumbel α=${c.alpha ?? 0.2}`;
    default:
      return c.source;
  }
}

export const runName = (c: RunConfig, seed: number): string => `${c.name}_s${seed}`;

/** What a finished `train --json` reports, as the table reads it. */
export interface RunRecord {
  config: string;
  seed: number;
  steps: number;
  validBpc: number;
  shorteningFactor: number;
  trainTokensPerCpuSecond: number;
  evalTokensPerCpuSecond: number;
  peakRssBytes: number;
  peakTensorBytes: number;
  /** Validation BPC at the `--eval-every` steps (train's "step N: … valid X bpc" lines), in step order. */
  curve?: { step: number; validBpc: number }[];
}

const EVAL_LINE = /^step (\d+): train \S+ bpc, valid (\S+) bpc$/;

const RECORD_FIELDS = [
  'steps',
  'validBpc',
  'shorteningFactor',
  'trainTokensPerCpuSecond',
  'evalTokensPerCpuSecond',
  'peakRssBytes',
  'peakTensorBytes',
] as const;

/**
 * Reads a run's log (everything `train ... --json` printed, appended over resumes): finished iff its last
 * non-empty line is train's JSON summary. Returns null for a run still going or killed; a last line that is
 * JSON but lacks the summary's numbers is an error (it is not a train log).
 */
export function parseRunLog(text: string, config: string, seed: number): RunRecord | null {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const last = lines.at(-1);
  if (!last?.startsWith('{')) return null;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(last) as Record<string, unknown>;
  } catch {
    return null; // a line cut off by a kill
  }
  const rec = { config, seed } as RunRecord;
  for (const k of RECORD_FIELDS) {
    // A run that never closed a group has SF +∞, which JSON writes as null.
    const v = k === 'shorteningFactor' && j[k] === null ? Number.POSITIVE_INFINITY : j[k];
    if (typeof v !== 'number' || Number.isNaN(v))
      throw new ReproduceError(
        `${config}_s${seed}: the log's last line has no number '${k}'; is it a train --json log?`,
      );
    rec[k] = v;
  }
  // A step evaluated before a kill and again after the resume gives the same number (resume is bit-exact).
  const curve = new Map<number, number>();
  for (const l of lines) {
    const m = EVAL_LINE.exec(l);
    if (m) curve.set(Number(m[1]), Number(m[2]));
  }
  if (curve.size) rec.curve = [...curve].sort((a, b) => a[0] - b[0]).map(([step, validBpc]) => ({ step, validBpc }));
  return rec;
}

/** Reads `<dir>/<name>_s<seed>.log`; null when it is missing or the run has not finished. */
export function readRun(dir: string, c: RunConfig, seed: number): RunRecord | null {
  const path = join(dir, `${runName(c, seed)}.log`);
  return existsSync(path) ? parseRunLog(readFileSync(path, 'utf8'), c.name, seed) : null;
}

/**
 * A checkpoint's saved configuration, from the safetensors header only (8-byte length, JSON), without reading
 * its tensors. Null when there is no checkpoint.
 */
export function readCheckpointHead(
  path: string,
): { model: Record<string, unknown>; train: Record<string, number> } | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw new ReproduceError(`${path}: not a checkpoint (shorter than 8 bytes)`);
    const n = Number(len.readBigUInt64LE(0));
    if (n > 64 * 2 ** 20) throw new ReproduceError(`${path}: not a checkpoint (a header of ${n} bytes)`);
    const head = Buffer.alloc(n);
    if (readSync(fd, head, 0, n, 8) !== n)
      throw new ReproduceError(`${path}: not a checkpoint (its header is cut short)`);
    const json = (text: string, what: string): unknown => {
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new ReproduceError(`${path}: not a checkpoint (${what} is not JSON: ${(e as Error).message})`);
      }
    };
    const meta = (json(head.toString('utf8'), 'the header') as { __metadata__?: Record<string, string> } | null)
      ?.__metadata__;
    const raw = meta?.['tessera.checkpoint'];
    if (!raw) throw new ReproduceError(`${path}: not a Tessera checkpoint`);
    const cfg = (
      json(raw, 'the checkpoint head') as {
        config?: { model: Record<string, unknown>; train: Record<string, number> };
      } | null
    )?.config;
    if (!cfg?.model || !cfg.train) throw new ReproduceError(`${path}: not a dyn-pool checkpoint`);
    return { model: cfg.model, train: cfg.train };
  } finally {
    closeSync(fd);
  }
}

export interface TableRow {
  name: string;
  label: string;
  /** Validation BPC per seed (in the order of `seeds`), null where the run has not finished. */
  bpc: (number | null)[];
  mean: number | null;
  /** Half the spread (max − min) / 2 of the finished seeds. */
  halfSpread: number | null;
  /** BPC − the baseline's BPC of the same seed. */
  delta: (number | null)[];
  meanDelta: number | null;
  shorteningFactor: number | null;
  /** Means over seeds of the per-seed ratio to the baseline of the same seed (speeds: higher is faster). */
  trainSpeedRatio: number | null;
  inferenceSpeedRatio: number | null;
  peakTensorRatio: number | null;
  peakRssRatio: number | null;
  /** Means over seeds of the absolute values. */
  trainTokensPerCpuSecond: number | null;
  evalTokensPerCpuSecond: number | null;
  peakTensorBytes: number | null;
  peakRssBytes: number | null;
}

export interface ReproduceTable {
  seeds: number[];
  baseline: string | null;
  rows: TableRow[];
  /** Runs of the grid with no finished record. */
  missing: string[];
}

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/**
 * Builds the table from finished runs. Δ and the ratios are paired by seed (a seed gives every configuration
 * the same data order and, for the shared blocks, the same start), then averaged over the seeds where both the
 * row's and the baseline's run finished. A throughput of 0 (a run resumed after its last step) counts as
 * unknown. The baseline is the first `none` configuration unless named.
 */
export function buildTable(
  configs: RunConfig[],
  seeds: number[],
  records: RunRecord[],
  opts: { baseline?: string } = {},
): ReproduceTable {
  const base = opts.baseline ?? configs.find((c) => c.source === 'none')?.name ?? null;
  if (base !== null && !configs.some((c) => c.name === base))
    throw new ReproduceError(`baseline '${base}' is not in the grid (${configs.map((c) => c.name).join(', ')})`);
  const get = (name: string, seed: number) => records.find((r) => r.config === name && r.seed === seed) ?? null;
  const missing: string[] = [];
  const rows = configs.map((c): TableRow => {
    const rs = seeds.map((s) => get(c.name, s));
    seeds.forEach((s, i) => {
      if (!rs[i]) missing.push(runName(c, s));
    });
    const done = rs.filter((r): r is RunRecord => r !== null);
    const bpcs = done.map((r) => r.validBpc);
    const pair = (f: (r: RunRecord, b: RunRecord) => number | null): number[] =>
      seeds
        .map((s, i) => {
          const r = rs[i];
          const b = base === null ? null : get(base, s);
          return r && b ? f(r, b) : null;
        })
        .filter((x): x is number => x !== null && Number.isFinite(x));
    const ratio = (k: (typeof RECORD_FIELDS)[number]) =>
      mean(pair((r, b) => (r[k] > 0 && b[k] > 0 ? r[k] / b[k] : null)));
    const delta = seeds.map((s, i) => {
      const b = base === null ? null : get(base, s);
      return rs[i] && b ? rs[i]!.validBpc - b.validBpc : null;
    });
    const positive = (k: (typeof RECORD_FIELDS)[number]) => mean(done.map((r) => r[k]).filter((x) => x > 0));
    return {
      name: c.name,
      label: configLabel(c),
      bpc: rs.map((r) => r?.validBpc ?? null),
      mean: mean(bpcs),
      halfSpread: bpcs.length ? (Math.max(...bpcs) - Math.min(...bpcs)) / 2 : null,
      delta,
      meanDelta: mean(delta.filter((d): d is number => d !== null)),
      shorteningFactor: mean(done.map((r) => r.shorteningFactor).filter(Number.isFinite)),
      trainSpeedRatio: ratio('trainTokensPerCpuSecond'),
      inferenceSpeedRatio: ratio('evalTokensPerCpuSecond'),
      peakTensorRatio: ratio('peakTensorBytes'),
      peakRssRatio: ratio('peakRssBytes'),
      trainTokensPerCpuSecond: positive('trainTokensPerCpuSecond'),
      evalTokensPerCpuSecond: positive('evalTokensPerCpuSecond'),
      peakTensorBytes: positive('peakTensorBytes'),
      peakRssBytes: positive('peakRssBytes'),
    };
  });
  return { seeds, baseline: base, rows, missing };
}

const fix = (x: number | null, d: number) => (x === null ? '—' : x.toFixed(d));
const signed = (x: number | null) => (x === null ? '—' : `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(3)}`);
const mib = (b: number | null) => (b === null ? '' : ` (${(b / 2 ** 20).toFixed(1)} MiB)`);

/** The table in the README's form; the baseline's row carries the absolute rates and sizes in parentheses. */
export function tableMarkdown(t: ReproduceTable, notes: string[] = []): string {
  const seedsHead = t.seeds.map((s) => `seed ${s}`);
  const bl = t.rows.find((r) => r.name === t.baseline)?.label ?? 'vanilla';
  const head = [
    'model',
    ...seedsHead,
    'mean ±',
    `Δ vs ${bl} (${t.seeds.length > 1 ? `seed ${t.seeds.join(' / ')}` : `seed ${t.seeds[0]}`})`,
    'SF (valid)',
    `train × ${bl}`,
    `inference × ${bl}`,
    `peak tensors × ${bl}`,
    `peak RSS × ${bl}`,
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of t.rows) {
    const isBase = r.name === t.baseline;
    const paired = r.delta.map(signed).join(' / ');
    const cells = [
      r.label,
      ...r.bpc.map((x) => fix(x, 3)),
      r.mean === null ? '—' : `${r.mean.toFixed(3)} ± ${r.halfSpread!.toFixed(3)}`,
      r.meanDelta === null ? '—' : t.seeds.length > 1 ? `${signed(r.meanDelta)} (${paired})` : signed(r.meanDelta),
      fix(r.shorteningFactor, 2),
      fix(r.trainSpeedRatio, 2) +
        (isBase && r.trainTokensPerCpuSecond ? ` (${r.trainTokensPerCpuSecond.toFixed(0)} tok/CPU-s)` : ''),
      fix(r.inferenceSpeedRatio, 2) +
        (isBase && r.evalTokensPerCpuSecond ? ` (${r.evalTokensPerCpuSecond.toFixed(0)} tok/CPU-s)` : ''),
      fix(r.peakTensorRatio, 2) + (isBase ? mib(r.peakTensorBytes) : ''),
      fix(r.peakRssRatio, 2) + (isBase ? mib(r.peakRssBytes) : ''),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const foot = [
    "Validation BPC of each run's final checkpoint; Δ is paired by seed; ± is half the spread over the seeds.",
    "Speeds are tokens per CPU-second of each run's own process (training loop, evaluation excluded; inference: " +
      'the final evaluation), memory the peaks of each run: separate processes, not interleaved, so read the ' +
      'ratios as ±10 % at equal load.',
    ...notes,
  ];
  if (t.missing.length) foot.push(`Not finished (left out): ${t.missing.join(', ')}.`);
  return `${lines.join('\n')}\n\n${foot.join('\n')}\n`;
}

/**
 * Validation BPC during training, one row per evaluated step and one column per configuration: the mean over
 * the seeds whose finished run evaluated that step (train's `--eval-every`), and Δ vs the baseline of the same
 * seeds. Empty when no run logged an evaluation.
 */
export function curveMarkdown(
  configs: RunConfig[],
  seeds: number[],
  records: RunRecord[],
  baseline: string | null,
): string {
  const at = (name: string, seed: number, step: number) =>
    records.find((r) => r.config === name && r.seed === seed)?.curve?.find((p) => p.step === step)?.validBpc;
  const steps = [...new Set(records.flatMap((r) => r.curve?.map((p) => p.step) ?? []))].sort((a, b) => a - b);
  if (!steps.length) return '';
  const head = ['step', ...configs.map((c) => configLabel(c))];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const step of steps) {
    const cells = configs.map((c) => {
      const v = seeds.map((s) => at(c.name, s, step)).filter((x): x is number => x !== undefined);
      if (!v.length) return '—';
      const m = (v.reduce((a, b) => a + b, 0) / v.length).toFixed(3);
      const d = seeds
        .map((s) => {
          const x = at(c.name, s, step);
          const b = baseline === null ? undefined : at(baseline, s, step);
          return x !== undefined && b !== undefined ? x - b : null;
        })
        .filter((x): x is number => x !== null);
      return c.name === baseline || !d.length ? m : `${m} (${signed(d.reduce((a, b) => a + b, 0) / d.length)})`;
    });
    lines.push(`| ${step} | ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n\nValidation BPC during training: mean over the seeds that evaluated the step (Δ vs vanilla of the same seeds).\n`;
}

/** Runs `dyn-pool train <args>`, appending all it prints to `logPath`; resolves with the exit code. */
export type TrainRunner = (args: string[], logPath: string) => Promise<number>;

/**
 * The default runner: `dyn-pool train` in a child process (its own peak memory and CPU time), with the same
 * Node flags as this process (the source condition and tsx when run from the sources). SIGINT / SIGTERM are
 * passed on to it, so a kill leaves the last checkpoint for `--resume`.
 */
export function childRunner(opts: { execArgv?: string[]; echo?: (line: string) => void } = {}): TrainRunner {
  const here = fileURLToPath(import.meta.url);
  const bin = join(dirname(here), here.endsWith('.ts') ? 'bin.ts' : 'bin.js');
  return (args, logPath) =>
    new Promise((resolve, reject) => {
      const log = createWriteStream(logPath, { flags: 'a' });
      const child = spawn(process.execPath, [...(opts.execArgv ?? process.execArgv), bin, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const pass = (sig: NodeJS.Signals) => () => child.kill(sig);
      const onInt = pass('SIGINT');
      const onTerm = pass('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      const onData = (d: Buffer) => {
        log.write(d);
        if (opts.echo) for (const l of d.toString('utf8').split('\n')) if (l.trim()) opts.echo(l);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        log.end(() => (signal ? reject(new ReproduceError(`train was stopped by ${signal}`)) : resolve(code ?? 1)));
      });
    });
}

/** Takes `<run>.lock` (exclusive create); a lock whose process is gone is taken over. */
function takeLock(path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8'));
      let alive = false;
      try {
        alive = Number.isInteger(pid) && pid > 0 && process.kill(pid, 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) return false;
      unlinkSync(path);
    }
  }
  return false;
}

export interface GridOptions {
  /** Training text and, optionally, held-out text (paths, as the train command takes them). */
  text: string;
  valid?: string;
  /** Directory of the runs' `.log` and `.ckpt` files. */
  dir: string;
  configs: RunConfig[];
  seeds: number[];
  /** Train flags shared by every run (the recipe), e.g. ['--d-model', '256', '--steps', '400']. */
  recipe: string[];
  /** The recipe's number of steps: a log that finished with fewer is resumed to this many. */
  steps: number;
  runner: TrainRunner;
  log?: (line: string) => void;
}

export interface GridResult {
  trained: string[];
  skipped: string[];
  /** Runs another process holds (its `.lock`). */
  busy: string[];
  failed: string[];
}

/**
 * Trains every configuration × seed that has not finished (seed-major: the whole grid for the first seed, then
 * the next), each with `--resume`, so a killed job continues where its checkpoints left off. Several processes
 * may share a directory: each run is locked while it trains.
 */
export async function runGrid(o: GridOptions): Promise<GridResult> {
  const log = o.log ?? (() => {});
  const res: GridResult = { trained: [], skipped: [], busy: [], failed: [] };
  const total = o.configs.length * o.seeds.length;
  let i = 0;
  for (const seed of o.seeds)
    for (const c of o.configs) {
      i++;
      const name = runName(c, seed);
      const done = readRun(o.dir, c, seed);
      if (done && done.steps >= o.steps) {
        res.skipped.push(name);
        log(`[${i}/${total}] ${name}: finished (${done.validBpc.toFixed(4)} bpc), skipped`);
        continue;
      }
      const lock = join(o.dir, `${name}.lock`);
      if (!takeLock(lock)) {
        res.busy.push(name);
        log(`[${i}/${total}] ${name}: another process is training it (${lock}), skipped`);
        continue;
      }
      try {
        const args = [
          'train',
          o.text,
          ...(o.valid ? ['--valid', o.valid] : []),
          '-o',
          join(o.dir, `${name}.ckpt`),
          ...sourceFlags(c),
          '--seed',
          String(seed),
          ...o.recipe,
          '--resume',
          '--no-progress',
          '--json',
        ];
        log(`[${i}/${total}] ${name}: training (dyn-pool ${args.join(' ')})`);
        const code = await o.runner(args, join(o.dir, `${name}.log`));
        const rec = readRun(o.dir, c, seed);
        if (code !== 0 || !rec) {
          res.failed.push(name);
          log(`[${i}/${total}] ${name}: failed (exit ${code}); see ${name}.log`);
        } else {
          res.trained.push(name);
          log(`[${i}/${total}] ${name}: ${rec.validBpc.toFixed(4)} bpc, SF ${rec.shorteningFactor.toFixed(2)}`);
        }
      } finally {
        unlinkSync(lock);
      }
    }
  return res;
}

/**
 * The recipe a directory's runs were started with (`reproduce.recipe.json`): written by the first run, checked
 * by later ones, so one table never mixes recipes.
 */
export function checkRecipe(dir: string, recipe: { text: string; valid?: string; flags: string[] }): void {
  const path = join(dir, 'reproduce.recipe.json');
  const now = JSON.stringify(recipe);
  if (!existsSync(path)) {
    try {
      // exclusive: of two processes starting at once, one writes and the other compares with it
      writeFileSync(path, `${now}\n`, { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  let was: string;
  try {
    was = JSON.stringify(JSON.parse(readFileSync(path, 'utf8')));
  } catch (e) {
    throw new ReproduceError(
      `${path} is not JSON (${(e as Error).message}); it records the recipe the runs in ${dir} share: restore it or use another --dir`,
    );
  }
  if (was !== now)
    throw new ReproduceError(
      `the runs in ${dir} were started with another recipe (${path}): ${was}; now ${now}. Use another --dir, or the same flags.`,
    );
}

/** Collects finished runs and the train configuration of each from its checkpoint header. */
export function collectRuns(
  dir: string,
  configs: RunConfig[],
  seeds: number[],
): { records: RunRecord[]; recipes: Map<string, Record<string, unknown>> } {
  const records: RunRecord[] = [];
  const recipes = new Map<string, Record<string, unknown>>();
  for (const seed of seeds)
    for (const c of configs) {
      const r = readRun(dir, c, seed);
      if (!r) continue;
      records.push(r);
      const head = readCheckpointHead(join(dir, `${runName(c, seed)}.ckpt`));
      if (head) {
        const m = head.model;
        recipes.set(runName(c, seed), {
          dModel: m.dModel,
          layers: m.layers,
          positions: m.positions ?? 'rotary',
          ln: m.ln,
          seqLen: head.train.seqLen,
          batchSize: head.train.batchSize,
          steps: head.train.steps,
          warmup: head.train.warmup,
          lr: head.train.lr,
          clip: head.train.clip,
        });
      }
    }
  return { records, recipes };
}

/**
 * Notes for the table: the shared recipe read from the checkpoints, or every run that differs from the first
 * (a table that mixes recipes says so).
 */
export function recipeNotes(recipes: Map<string, Record<string, unknown>>): string[] {
  const all = [...recipes];
  if (all.length === 0) return [];
  const [firstName, first] = all[0]!;
  const key = (r: Record<string, unknown>) => JSON.stringify(r);
  const odd = all.filter(([, r]) => key(r) !== key(first));
  const fmt = (r: Record<string, unknown>) =>
    `d ${r.dModel}, ${(r.layers as number[]).join(' + ')} blocks, ${r.positions}, ${r.ln ?? 'post'}-LN, ` +
    `${r.seqLen} × ${r.batchSize}, ${r.steps} steps, warm-up ${r.warmup}, lr ${r.lr}, clip ${r.clip}`;
  const notes = [`Recipe (from the checkpoints${odd.length ? `; ${firstName}'s` : ''}): ${fmt(first)}.`];
  for (const [name, r] of odd) notes.push(`**${name} differs:** ${fmt(r)}.`);
  return notes;
}
