// File-system readers (Node only): TextGrid and alignment files, JSON-lines manifests streamed line by line with a
// bounded line length, text corpora with train/valid/test files, LibriSpeech-style folders, WAV headers.
// Audio is returned as paths plus metadata; decode it with @tessera/audio or anything else.
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type AbxItem, parseAbxItems, parseFrameAlignments, parseIntervals } from './alignments.js';
import { FormatError, LimitError } from './errors.js';
import { type ManifestEntry, parseManifestLine } from './manifest.js';
import { decodeText, type SplitName } from './text.js';
import { type Interval, parseTextGrid, type TextGrid } from './textgrid.js';
import { readWavInfo, type WavInfo } from './wav-header.js';

export * from './index.js';

export interface ReadOptions {
  /** Refuse files larger than this many bytes (default 1 GiB). */
  maxBytes?: number;
}

async function readBounded(path: string, opts: ReadOptions = {}): Promise<Uint8Array> {
  const max = opts.maxBytes ?? 2 ** 30;
  const s = await stat(path);
  if (s.size > max) throw new LimitError(path, undefined, `file of ${s.size} bytes exceeds the limit of ${max}`);
  return readFile(path);
}

/** A TextGrid file in the long or short text format, UTF-8 or UTF-16 (with BOM). */
export async function readTextGridFile(path: string, opts: ReadOptions = {}): Promise<TextGrid> {
  return parseTextGrid(decodeText(await readBounded(path, opts)), { source: path });
}

export async function readIntervalsFile(
  path: string,
  opts: ReadOptions & { timeScale?: number } = {},
): Promise<Map<string, Interval[]>> {
  return parseIntervals(decodeText(await readBounded(path, opts)), { source: path, timeScale: opts.timeScale });
}

export async function readFrameAlignmentsFile(path: string, opts: ReadOptions = {}): Promise<Map<string, Int32Array>> {
  return parseFrameAlignments(decodeText(await readBounded(path, opts)), { source: path });
}

export async function readAbxItemFile(path: string, opts: ReadOptions = {}): Promise<AbxItem[]> {
  return parseAbxItems(decodeText(await readBounded(path, opts)), { source: path });
}

/** Lines of a UTF-8 file as [text, 1-based number]; a line longer than `maxLineBytes` is a LimitError. */
export async function* readLines(path: string, opts: { maxLineBytes?: number } = {}): AsyncGenerator<[string, number]> {
  const max = opts.maxLineBytes ?? 16 * 1024 * 1024;
  const dec = new TextDecoder();
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  let no = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 16 }) as AsyncIterable<Uint8Array>) {
    let s = 0;
    for (;;) {
      const nl = chunk.indexOf(10, s);
      const end = nl < 0 ? chunk.length : nl;
      if (partBytes + end - s > max) throw new LimitError(path, no + 1, `line longer than ${max} bytes`);
      if (nl < 0) {
        if (end > s) {
          parts.push(chunk.subarray(s));
          partBytes += end - s;
        }
        break;
      }
      parts.push(chunk.subarray(s, nl));
      const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      yield [dec.decode(line).replace(/\r$/, ''), ++no];
      parts = [];
      partBytes = 0;
      s = nl + 1;
    }
  }
  if (partBytes) yield [dec.decode(Buffer.concat(parts)).replace(/\r$/, ''), ++no];
}

/** Streams the entries of a JSON-lines manifest. */
export async function* streamManifest(
  path: string,
  opts: { maxLineBytes?: number } = {},
): AsyncGenerator<ManifestEntry> {
  for await (const [l, no] of readLines(path, opts)) {
    const t = l.trim();
    if (t) yield parseManifestLine(t, path, no);
  }
}

export async function readManifestFile(path: string, opts: { maxLineBytes?: number } = {}): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  for await (const e of streamManifest(path, opts)) out.push(e);
  return out;
}

/** A corpus folder with `train.txt`, `valid.txt`, `test.txt` (any missing split reads as ''). */
export async function readTextCorpus(dir: string, opts: ReadOptions = {}): Promise<Record<SplitName, string>> {
  const out = { train: '', valid: '', test: '' };
  for (const s of ['train', 'valid', 'test'] as const) {
    try {
      out[s] = decodeText(await readBounded(join(dir, `${s}.txt`), opts));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return out;
}

/** The header of a WAV file (reads at most the first `headerBytes`, default 1 MiB). */
export async function readWavInfoFile(path: string, headerBytes = 1 << 20): Promise<WavInfo> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = new Uint8Array(Math.min(size, headerBytes));
    await fh.read(buf, 0, buf.length, 0);
    return readWavInfo(buf, path, size);
  } finally {
    await fh.close();
  }
}

export interface LibriSpeechUtterance {
  id: string;
  speaker: string;
  chapter: string;
  text: string;
  /** Path of the audio file (`<id>.flac` or `.wav`), joined to the root given. */
  audio: string;
}

/**
 * A LibriSpeech-style folder: `<root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` with lines
 * `<speaker>-<chapter>-<utt> TRANSCRIPT`, and audio `<id>.flac` or `<id>.wav` beside it. Utterances whose audio is
 * missing are skipped unless `requireAudio` is false. Sorted by id.
 */
export async function readLibriSpeech(
  root: string,
  opts: { requireAudio?: boolean; maxUtterances?: number } = {},
): Promise<LibriSpeechUtterance[]> {
  const { requireAudio = true, maxUtterances = 10_000_000 } = opts;
  const out: LibriSpeechUtterance[] = [];
  const dirs = async (p: string): Promise<string[]> =>
    (await readdir(p, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  for (const speaker of await dirs(root)) {
    for (const chapter of await dirs(join(root, speaker))) {
      const dir = join(root, speaker, chapter);
      const files = new Set(await readdir(dir));
      const trans = `${speaker}-${chapter}.trans.txt`;
      if (!files.has(trans)) continue;
      const path = join(dir, trans);
      for await (const [l, no] of readLines(path, { maxLineBytes: 1 << 20 })) {
        const t = l.trim();
        if (!t) continue;
        const sp = t.indexOf(' ');
        const id = sp < 0 ? t : t.slice(0, sp);
        if (!id.startsWith(`${speaker}-${chapter}-`))
          throw new FormatError(
            path,
            no,
            `utterance id "${id.slice(0, 40)}" does not start with "${speaker}-${chapter}-"`,
          );
        const audio = files.has(`${id}.flac`) ? `${id}.flac` : files.has(`${id}.wav`) ? `${id}.wav` : undefined;
        if (!audio && requireAudio) continue;
        if (out.length >= maxUtterances) throw new LimitError(path, no, `more than ${maxUtterances} utterances`);
        out.push({
          id,
          speaker,
          chapter,
          text: sp < 0 ? '' : t.slice(sp + 1).trim(),
          audio: join(dir, audio ?? `${id}.flac`),
        });
      }
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
