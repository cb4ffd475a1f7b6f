// JSON-lines manifests of speech data, one utterance per line:
//   {"audio": "wav16k/u0001.wav", "text": "hello world", "phones": [[0, 0.05, ""], [0.05, 0.12, "h"], ...],
//    "speaker": "en-us+f3", "duration": 1.93}
// `audio` is a path (relative to the manifest's folder by convention); `phones` are [start, end, label] in seconds.
// Extra keys are kept in `extra`, so tools can add fields without breaking readers.
import { FormatError, show, ValueError } from './errors.js';
import type { Interval } from './textgrid.js';

export interface ManifestEntry {
  audio: string;
  text?: string;
  phones?: Interval[];
  /** Word intervals, in the same [start, end, label] form as phones. */
  words?: Interval[];
  speaker?: string;
  /** Seconds. */
  duration?: number;
  /** Any other fields of the line. */
  extra?: Record<string, unknown>;
}

const KNOWN = new Set(['audio', 'text', 'phones', 'words', 'speaker', 'duration']);

function intervals(v: unknown, key: string, source: string, line: number): Interval[] {
  if (!Array.isArray(v))
    throw new FormatError(
      source,
      line,
      `"${key}" must be an array of [start, end, label]; got ${show(JSON.stringify(v))}`,
    );
  const out: Interval[] = [];
  let prevEnd = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < v.length; k++) {
    const x = v[k];
    const [start, end, label] = Array.isArray(x) ? x : x && typeof x === 'object' ? [x.start, x.end, x.label] : [];
    if (typeof start !== 'number' || typeof end !== 'number' || typeof label !== 'string' || !(end >= start)) {
      throw new FormatError(
        source,
        line,
        `"${key}"[${k}] must be [start, end, label] with start <= end; got ${show(JSON.stringify(x))}`,
      );
    }
    if (start < prevEnd - 1e-9)
      throw new FormatError(
        source,
        line,
        `"${key}"[${k}] starts at ${start}, before the previous one ends (${prevEnd})`,
      );
    prevEnd = end;
    out.push({ start, end, label });
  }
  return out;
}

/** Parses one manifest line (already split); `line` is for error messages. */
export function parseManifestLine(text: string, source = '<input>', line = 1): ManifestEntry {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new FormatError(source, line, `invalid JSON: ${(e as Error).message}`);
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new FormatError(source, line, 'expected a JSON object');
  const r = o as Record<string, unknown>;
  if (typeof r.audio !== 'string' || r.audio === '')
    throw new FormatError(source, line, `"audio" must be a non-empty string; got ${show(JSON.stringify(r.audio))}`);
  const e: ManifestEntry = { audio: r.audio };
  for (const k of ['text', 'speaker'] as const) {
    if (r[k] === undefined) continue;
    if (typeof r[k] !== 'string')
      throw new FormatError(source, line, `"${k}" must be a string; got ${show(JSON.stringify(r[k]))}`);
    e[k] = r[k];
  }
  if (r.duration !== undefined) {
    if (typeof r.duration !== 'number' || !(r.duration >= 0))
      throw new FormatError(
        source,
        line,
        `"duration" must be a non-negative number; got ${show(JSON.stringify(r.duration))}`,
      );
    e.duration = r.duration;
  }
  if (r.phones !== undefined) e.phones = intervals(r.phones, 'phones', source, line);
  if (r.words !== undefined) e.words = intervals(r.words, 'words', source, line);
  const extra = Object.fromEntries(Object.entries(r).filter(([k]) => !KNOWN.has(k)));
  if (Object.keys(extra).length) e.extra = extra;
  return e;
}

export interface ManifestOptions {
  source?: string;
  /** Longest accepted line in characters (default 16 MiB); a longer one is a FormatError, not a giant JSON parse. */
  maxLineLength?: number;
}

/** Parses a whole manifest; blank lines are skipped. */
export function parseManifest(text: string, opts: ManifestOptions = {}): ManifestEntry[] {
  const source = opts.source ?? '<input>';
  const max = opts.maxLineLength ?? 16 * 1024 * 1024;
  const out: ManifestEntry[] = [];
  let start = 0;
  for (let no = 1; start < text.length; no++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end - start > max) throw new FormatError(source, no, `line longer than ${max} characters`);
    const l = text.slice(start, end).trim();
    if (l) out.push(parseManifestLine(l, source, no));
    start = end + 1;
  }
  return out;
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;

/** One JSON line (no newline). Times are rounded to microseconds. */
export function formatManifestLine(e: ManifestEntry): string {
  if (!e.audio) throw new ValueError('formatManifestLine: "audio" is required');
  const o: Record<string, unknown> = { audio: e.audio };
  if (e.text !== undefined) o.text = e.text;
  if (e.speaker !== undefined) o.speaker = e.speaker;
  if (e.duration !== undefined) o.duration = round(e.duration);
  if (e.phones) o.phones = e.phones.map((p) => [round(p.start), round(p.end), p.label]);
  if (e.words) o.words = e.words.map((p) => [round(p.start), round(p.end), p.label]);
  if (e.extra) for (const [k, v] of Object.entries(e.extra)) if (!KNOWN.has(k)) o[k] = v;
  return JSON.stringify(o);
}

export function formatManifest(entries: Iterable<ManifestEntry>): string {
  let s = '';
  for (const e of entries) s += `${formatManifestLine(e)}\n`;
  return s;
}
