// Phone alignments as plain text, the formats of the ZeroSpeech challenges and of CPC_audio:
// - frame labels (CPC_audio `converted_aligned_phones.txt`): `utt id id id ...`, one label per 10 ms frame;
// - intervals: `start end label` (one file) or `file start end label` (many), times in seconds (or any unit with
//   `timeScale`, e.g. 1/16000 for TIMIT-style sample offsets);
// - ABX item files (ZeroSpeech 2017–2021): `#file onset offset #phone prev-phone next-phone speaker`.
// Every malformed line is reported with the file and the line number.
import { FormatError, LimitError, show, ValueError } from './errors.js';
import type { Interval } from './textgrid.js';

export interface AlignmentOptions {
  /** File name for error messages; default `<input>`. */
  source?: string;
  /** Reject input with more lines than this (default 50 million). */
  maxLines?: number;
}

function* lines(text: string, source: string, maxLines: number): Generator<[string, number]> {
  let start = 0;
  let no = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    no++;
    if (no > maxLines) throw new LimitError(source, no, `more than ${maxLines} lines`);
    const l = text.slice(start, end).replace(/\r$/, '');
    yield [l, no];
    start = end + 1;
  }
}

/** CPC_audio frame labels: `utt id id ...` → Map utt → Int32Array of non-negative label ids. */
export function parseFrameAlignments(text: string, opts: AlignmentOptions = {}): Map<string, Int32Array> {
  const source = opts.source ?? '<input>';
  const out = new Map<string, Int32Array>();
  for (const [l, no] of lines(text, source, opts.maxLines ?? 5e7)) {
    const f = l.trim().split(/\s+/);
    if (f[0] === '') continue;
    if (f.length < 2) throw new FormatError(source, no, `expected "utterance label label ..."; got ${show(l)}`);
    const ids = new Int32Array(f.length - 1);
    for (let k = 1; k < f.length; k++) {
      const v = Number(f[k]);
      if (!/^\d+$/.test(f[k]!) || v > 2147483647)
        throw new FormatError(source, no, `label ${k} of ${show(f[0])} is not a non-negative integer: ${show(f[k])}`);
      ids[k - 1] = v;
    }
    if (out.has(f[0]!)) throw new FormatError(source, no, `utterance ${show(f[0])} appears twice`);
    out.set(f[0]!, ids);
  }
  return out;
}

export function formatFrameAlignments(m: Map<string, ArrayLike<number>>): string {
  let s = '';
  for (const [utt, ids] of m) s += `${utt} ${Array.from(ids).join(' ')}\n`;
  return s;
}

/**
 * Interval alignments. Three columns (`start end label`) describe one file, keyed by `source`; four columns
 * (`file start end label`) any number. Blank lines and lines starting with `#` or `;` are skipped. Intervals of a
 * file must not overlap or go backwards.
 */
export function parseIntervals(
  text: string,
  opts: AlignmentOptions & { timeScale?: number } = {},
): Map<string, Interval[]> {
  const source = opts.source ?? '<input>';
  const scale = opts.timeScale ?? 1;
  if (!(scale > 0)) throw new ValueError(`parseIntervals: timeScale must be > 0; got ${scale}`);
  const out = new Map<string, Interval[]>();
  let columns = 0;
  for (const [l, no] of lines(text, source, opts.maxLines ?? 5e7)) {
    const t = l.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) continue;
    const f = t.split(/\s+/);
    if (f.length !== 3 && f.length !== 4)
      throw new FormatError(source, no, `expected "start end label" or "file start end label"; got ${f.length} fields`);
    if (columns && f.length !== columns)
      throw new FormatError(source, no, `expected ${columns} fields like the lines before; got ${f.length}`);
    columns = f.length;
    const [file, a, b, label] = f.length === 4 ? f : [source, ...f];
    const start = Number(a) * scale;
    const end = Number(b) * scale;
    if (!Number.isFinite(start) || !Number.isFinite(end))
      throw new FormatError(source, no, `expected numeric start and end; got ${show(a)} ${show(b)}`);
    if (end < start) throw new FormatError(source, no, `interval ends before it starts (${a} > ${b})`);
    let segs = out.get(file!);
    if (!segs) out.set(file!, (segs = []));
    const prev = segs[segs.length - 1];
    if (prev && start < prev.end - 1e-9)
      throw new FormatError(
        source,
        no,
        `interval [${a}, ${b}] of ${show(file)} starts before the previous one ends (${prev.end / scale})`,
      );
    segs.push({ start, end, label: label! });
  }
  return out;
}

export function formatIntervals(m: Map<string, readonly Interval[]>, withFile = true): string {
  let s = '';
  for (const [file, segs] of m) {
    for (const iv of segs)
      s += `${withFile ? `${file} ` : ''}${+iv.start.toFixed(6)} ${+iv.end.toFixed(6)} ${iv.label}\n`;
  }
  return s;
}

export interface AbxItem {
  file: string;
  onset: number;
  offset: number;
  phone: string;
  prev: string;
  next: string;
  speaker: string;
}

/** ZeroSpeech ABX `.item` file: a header line starting with `#file`, then 7 columns per line. */
export function parseAbxItems(text: string, opts: AlignmentOptions = {}): AbxItem[] {
  const source = opts.source ?? '<input>';
  const items: AbxItem[] = [];
  let header = false;
  for (const [l, no] of lines(text, source, opts.maxLines ?? 5e7)) {
    const t = l.trim();
    if (t === '') continue;
    if (!header) {
      if (!t.startsWith('#file'))
        throw new FormatError(
          source,
          no,
          `expected the header "#file onset offset #phone prev-phone next-phone speaker"; got ${show(t)}`,
        );
      header = true;
      continue;
    }
    const f = t.split(/\s+/);
    if (f.length !== 7)
      throw new FormatError(
        source,
        no,
        `expected 7 fields (file onset offset phone prev next speaker); got ${f.length}`,
      );
    const onset = Number(f[1]);
    const offset = Number(f[2]);
    if (!Number.isFinite(onset) || !Number.isFinite(offset) || offset < onset) {
      throw new FormatError(source, no, `expected onset <= offset as numbers; got ${show(f[1])} ${show(f[2])}`);
    }
    items.push({ file: f[0]!, onset, offset, phone: f[3]!, prev: f[4]!, next: f[5]!, speaker: f[6]! });
  }
  if (!header) throw new FormatError(source, 1, 'empty item file: expected the "#file ..." header');
  return items;
}

/**
 * Frame labels from intervals: frame i covers [i·shift, i·shift + window) and takes the label of the interval
 * holding its centre (`gap` where none does). `numFrames` defaults to the frames whose centre lies before the last end.
 */
export function intervalsToFrames(
  segs: readonly Interval[],
  opts: { frameShift?: number; window?: number; numFrames?: number; gap?: string } = {},
): string[] {
  const { frameShift = 0.01, window = frameShift, gap = '' } = opts;
  if (!(frameShift > 0)) throw new ValueError(`intervalsToFrames: frameShift must be > 0; got ${frameShift}`);
  const last = segs.length ? segs[segs.length - 1]!.end : 0;
  const n = opts.numFrames ?? Math.max(0, Math.floor((last - window / 2) / frameShift) + 1);
  const out = new Array<string>(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const c = i * frameShift + window / 2;
    while (k < segs.length && segs[k]!.end <= c) k++;
    out[i] = k < segs.length && segs[k]!.start <= c ? segs[k]!.label : gap;
  }
  return out;
}

/** Runs of equal labels back to intervals (frame i spans [i·shift, (i+1)·shift)). */
export function framesToIntervals(labels: ArrayLike<string | number>, frameShift = 0.01): Interval[] {
  const out: Interval[] = [];
  for (let i = 0; i < labels.length; ) {
    let j = i + 1;
    while (j < labels.length && labels[j] === labels[i]) j++;
    out.push({ start: i * frameShift, end: j * frameShift, label: String(labels[i]) });
    i = j;
  }
  return out;
}
