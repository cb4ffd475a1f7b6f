// The builder: runs the steps, skips those whose inputs, options and code did not change (a stamp per step), and
// writes data/MANIFEST.json with the versions and SHA-256 of everything fetched and of every file produced.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildText, type Skipped } from './build-text.js';
import type { Fetched, Log } from './fetch.js';
import { FLITE_TEST_VOICES, FLITE_TRAIN_VOICES, loadFlite } from './flite.js';
import { buildParallel } from './parallel.js';
import { buildReal } from './real.js';
import { type Ctx, TEXT_SOURCES, type TextSource } from './sources.js';
import { buildSpeech, type Engine } from './speech.js';
import { MissingToolError } from './tools.js';
import { sha256, writeIfChanged } from './util.js';

export const STEP_NAMES = [
  'text',
  'parallel',
  'speech-smoke',
  'speech-60min',
  'flite-smoke',
  'real',
  'speech-smoke-noisy',
  'speech-60min-noisy',
  'flite-60min',
] as const;
/** What runs when no step is named: the noisy copies and the large flite set are asked for by name. */
export const DEFAULT_STEPS: StepName[] = ['text', 'parallel', 'speech-smoke', 'speech-60min', 'flite-smoke', 'real'];
export type StepName = (typeof STEP_NAMES)[number];

export interface BuildOptions {
  data: string;
  steps: StepName[];
  langs: string[];
  lowercase: boolean;
  seed: number;
  force: boolean;
  sliceBytes: number;
  log: Log;
  /** For tests: other text sources, another speech engine. */
  sources?: TextSource[];
  engine?: Engine;
  fliteEngine?: Engine;
}

interface StepRecord {
  stamp: string;
  stats?: unknown;
  skipped?: Skipped[];
  error?: string;
  fetched: string[];
  outputs: Record<string, { bytes: number; sha256: string }>;
  seconds?: number;
}

export interface Manifest {
  builder: string;
  note: string;
  fetched: Record<string, Omit<Fetched, 'file'> & { file: string }>;
  steps: Partial<Record<StepName, StepRecord>>;
}

const here = dirname(fileURLToPath(import.meta.url));

/** A hash of the builder's own sources: a code change re-runs the steps. */
function codeHash(): string {
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.ts'))
    .sort();
  return sha256(files.map((f) => `${f}\n${readFileSync(join(here, f), 'utf8')}`).join('\n'));
}

function stepOptions(step: StepName, o: BuildOptions): unknown {
  switch (step) {
    case 'text':
      return {
        langs: o.langs,
        lowercase: o.lowercase,
        slice: o.sliceBytes,
        seed: o.seed,
        sources: (o.sources ?? TEXT_SOURCES).map((s) => s.from),
      };
    case 'speech-smoke':
    case 'speech-60min':
    case 'speech-smoke-noisy':
    case 'speech-60min-noisy':
      return { seed: o.seed, engine: o.engine?.name ?? 'espeak' };
    case 'flite-smoke':
    case 'flite-60min':
      return { seed: o.seed, engine: o.fliteEngine?.name ?? 'flite' };
    default:
      return {};
  }
}

export function readManifest(data: string): Manifest | undefined {
  const p = join(data, 'MANIFEST.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Manifest) : undefined;
}

export async function build(o: BuildOptions): Promise<{ manifest: Manifest; failed: string[]; missing: string[] }> {
  const cache = join(o.data, 'cache');
  const old = readManifest(o.data);
  const manifest: Manifest = {
    builder: '@tessera/corpus',
    note: 'Built by tooling/corpus. Sources are fetched at build time and never committed (several are GPL, GFDL or CC-BY-SA).',
    fetched: { ...(old?.fetched ?? {}) },
    steps: { ...(old?.steps ?? {}) },
  };
  const code = codeHash();
  const failed: string[] = [];
  const missing: string[] = [];
  for (const step of o.steps) {
    const stamp = sha256(JSON.stringify({ step, code, options: stepOptions(step, o) }));
    const prev = manifest.steps[step];
    const upToDate =
      !o.force &&
      prev?.stamp === stamp &&
      !prev.error &&
      Object.entries(prev.outputs).every(
        ([f, r]) => existsSync(join(o.data, f)) && statSync(join(o.data, f)).size === r.bytes,
      );
    if (upToDate) {
      o.log(`${step}: up to date`);
      continue;
    }
    const ctx: Ctx = { cache, log: o.log, fetched: new Map() };
    const skipped: Skipped[] = [];
    const t0 = Date.now();
    let res: { files: string[]; stats: unknown } | undefined;
    let error: string | undefined;
    try {
      switch (step) {
        case 'text':
          res = buildText(
            ctx,
            o.data,
            o.sources ?? TEXT_SOURCES,
            { langs: o.langs, lowercase: o.lowercase, sliceBytes: o.sliceBytes, seed: o.seed },
            skipped,
          );
          break;
        case 'parallel':
          res = buildParallel(ctx, o.data);
          break;
        case 'speech-smoke':
        case 'speech-60min':
        case 'speech-smoke-noisy':
        case 'speech-60min-noisy': {
          // the noisy sets speak the same utterances (same seed) with white noise at 10-20 dB SNR
          const small = step.startsWith('speech-smoke');
          const noise = step.endsWith('-noisy');
          const name = `${small ? 'smoke' : '60min'}${noise ? '-noisy' : ''}`;
          const spec = small ? { trainSeconds: 150, testSeconds: 30 } : { trainSeconds: 54 * 60, testSeconds: 6 * 60 };
          const seed = o.seed + (small ? 0 : 1);
          res = await buildSpeech(ctx, o.data, { name, ...spec, rates: [16000, 22050], noise, seed }, o.engine);
          break;
        }
        case 'flite-smoke':
        case 'flite-60min': {
          const small = step === 'flite-smoke';
          const spec = small ? { trainSeconds: 150, testSeconds: 30 } : { trainSeconds: 54 * 60, testSeconds: 6 * 60 };
          const voices = { trainVoices: FLITE_TRAIN_VOICES, testVoices: FLITE_TEST_VOICES };
          const name = small ? 'smoke' : '60min';
          const engine = o.fliteEngine ?? loadFlite(ctx);
          res = await buildSpeech(
            ctx,
            o.data,
            { name, ...spec, ...voices, rates: [16000, 22050], noise: false, seed: o.seed + 2 },
            engine,
            'flite',
          );
          break;
        }
        case 'real':
          res = buildReal(ctx, o.data);
          break;
      }
    } catch (e) {
      error = (e as Error).message;
      if (e instanceof MissingToolError) missing.push(`${step}: ${error}`);
      else failed.push(`${step}: ${error}`);
      o.log(`${step}: not built: ${error}`);
    }
    for (const s of skipped) missing.push(`${step}/${s.source}: ${s.reason}`);
    const outputs: StepRecord['outputs'] = {};
    for (const f of res?.files ?? []) {
      const b = readFileSync(f);
      outputs[relative(o.data, f)] = { bytes: b.length, sha256: sha256(b) };
    }
    for (const [k, f] of ctx.fetched) manifest.fetched[k] = { ...f, file: relative(o.data, f.file) };
    manifest.steps[step] = {
      stamp,
      ...(res ? { stats: res.stats } : {}),
      ...(skipped.length ? { skipped } : {}),
      ...(error ? { error } : {}),
      fetched: [...ctx.fetched.keys()].sort(),
      outputs,
    };
    o.log(`${step}: ${error ? 'failed' : 'done'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const sorted = (r: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)));
  manifest.fetched = sorted(manifest.fetched) as Manifest['fetched'];
  manifest.steps = sorted(manifest.steps) as Manifest['steps'];
  writeIfChanged(join(o.data, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  return { manifest, failed, missing };
}
