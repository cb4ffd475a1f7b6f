// Plain-text corpora: cleaning like the dynamic-pooling paper (Nawrot et al., "Efficient Transformers with Dynamic
// Token Pooling", ACL 2023, arXiv 2211.09761: NFC, optional lower-casing, Hebrew points dropped), deterministic
// document splits, and character / byte vocabularies.
import { ValueError } from './errors.js';
import { hashString } from './random.js';

export interface CleanOptions {
  /** Unicode normalization form; default 'NFC'. */
  normalize?: 'NFC' | 'NFKC' | 'NFD' | 'NFKD' | false;
  /** Lower-case (locale-independent); default false. */
  lowercase?: boolean;
  /** Drop Hebrew points and cantillation U+0591–U+05C7, keeping maqaf U+05BE and sof pasuq U+05C3; default true. */
  dropHebrewPoints?: boolean;
  /** Replace control characters (except newline) by a space, and runs of spaces/tabs by one space; default true. */
  collapseSpaces?: boolean;
}

// U+0591–U+05C7 minus U+05BE (maqaf) and U+05C3 (sof pasuq)
const HEBREW_POINTS = /[\u0591-\u05bd\u05bf-\u05c2\u05c4-\u05c7]/g;

export function dropHebrewPoints(s: string): string {
  return s.replace(HEBREW_POINTS, '');
}

/** Cleans one document. Newlines are kept (collapsed to at most one blank line); lines are trimmed. */
export function cleanText(text: string, opts: CleanOptions = {}): string {
  const { normalize = 'NFC', lowercase = false, dropHebrewPoints: dropPoints = true, collapseSpaces = true } = opts;
  let s = text.replace(/\r\n?/g, '\n');
  if (dropPoints) s = dropHebrewPoints(s);
  if (normalize) s = s.normalize(normalize);
  if (lowercase) s = s.toLowerCase();
  if (collapseSpaces) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes
    s = s.replace(/[\u0000-\u0009\u000b-\u001f\u007f\u00a0\u2000-\u200a\u202f\u205f\u3000]+/g, ' ');
    s = s.replace(/ {2,}/g, ' ');
    s = s
      .split('\n')
      .map((l) => l.trim())
      .join('\n');
    s = s.replace(/\n{3,}/g, '\n\n').trim();
  }
  return s;
}

export type SplitName = 'train' | 'valid' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'valid', 'test'];

/**
 * The split a document belongs to, from a hash of its id (not its position), so adding or removing other documents
 * never moves it. Ratios are [train, valid, test] and must sum to 1.
 */
export function splitOf(
  id: string,
  ratios: readonly [number, number, number] = [0.9, 0.05, 0.05],
  salt = 0,
): SplitName {
  checkRatios(ratios);
  const u = hashString(id, salt) / 4294967296;
  if (u < ratios[0]) return 'train';
  if (u < ratios[0] + ratios[1]) return 'valid';
  return 'test';
}

function checkRatios(r: readonly number[]): void {
  if (r.length !== 3 || r.some((x) => !(x >= 0)) || Math.abs(r[0]! + r[1]! + r[2]! - 1) > 1e-9) {
    throw new ValueError(`split ratios must be three non-negative numbers summing to 1; got [${r.join(', ')}]`);
  }
}

export interface Document {
  id: string;
  text: string;
}

/** Groups documents by `splitOf(id)`, keeping their input order within each split. */
export function splitDocuments<T extends { id: string }>(
  docs: Iterable<T>,
  ratios: readonly [number, number, number] = [0.9, 0.05, 0.05],
  salt = 0,
): Record<SplitName, T[]> {
  checkRatios(ratios);
  const out: Record<SplitName, T[]> = { train: [], valid: [], test: [] };
  for (const d of docs) out[splitOf(d.id, ratios, salt)].push(d);
  return out;
}

export interface VocabJSON {
  kind: 'char' | 'byte';
  specials: string[];
  symbols?: string[];
}

/**
 * Character vocabulary over Unicode code points: ids are the specials first (in order), then symbols by
 * descending frequency (ties by code point). Unknown characters map to `<unk>` when it is a special, else throw.
 */
export class CharVocab {
  readonly specials: readonly string[];
  readonly symbols: readonly string[];
  private readonly index = new Map<string, number>();

  constructor(symbols: readonly string[], specials: readonly string[] = ['<pad>', '<unk>']) {
    this.specials = [...specials];
    this.symbols = [...symbols];
    [...this.specials, ...this.symbols].forEach((s, i) => {
      if (this.index.has(s)) throw new ValueError(`CharVocab: duplicate symbol ${JSON.stringify(s)}`);
      this.index.set(s, i);
    });
  }

  /** Builds from text; characters seen fewer than `minCount` times fall to `<unk>`; `maxSize` caps the symbols. */
  static fromText(
    texts: string | Iterable<string>,
    opts: { minCount?: number; maxSize?: number; specials?: readonly string[] } = {},
  ): CharVocab {
    const { minCount = 1, maxSize = Number.POSITIVE_INFINITY, specials = ['<pad>', '<unk>'] } = opts;
    const counts = new Map<string, number>();
    for (const t of typeof texts === 'string' ? [texts] : texts) {
      for (const ch of t) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    }
    const symbols = [...counts]
      .filter(([, c]) => c >= minCount)
      .sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!)
      .slice(0, maxSize)
      .map(([s]) => s);
    return new CharVocab(symbols, specials);
  }

  get size(): number {
    return this.specials.length + this.symbols.length;
  }

  id(symbol: string): number | undefined {
    return this.index.get(symbol);
  }

  private bmp?: Int32Array;

  /** One id per code point. */
  encode(text: string): Int32Array {
    const unk = this.index.get('<unk>') ?? -1;
    if (!this.bmp) {
      // direct table for single UTF-16 unit characters: the hot path of encoding a corpus
      this.bmp = new Int32Array(65536).fill(-2);
      for (const [s, i] of this.index) if (s.length === 1) this.bmp[s.charCodeAt(0)] = i;
    }
    const t = this.bmp;
    const out = new Int32Array(text.length);
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      let id: number;
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        id = this.index.get(text.slice(i, i + 2)) ?? unk;
        i++;
      } else {
        id = t[c]!;
        if (id === -2) id = unk;
      }
      if (id < 0) {
        const ch = String.fromCodePoint(text.codePointAt(i - (c >= 0xd800 && c <= 0xdbff ? 1 : 0))!);
        throw new ValueError(`CharVocab.encode: ${JSON.stringify(ch)} is not in the vocabulary and there is no <unk>`);
      }
      out[n++] = id;
    }
    return out.slice(0, n);
  }

  /** Specials decode to nothing unless `keepSpecials`. */
  decode(ids: ArrayLike<number>, keepSpecials = false): string {
    const all = [...this.specials, ...this.symbols];
    let s = '';
    for (let k = 0; k < ids.length; k++) {
      const i = ids[k]!;
      if (i < 0 || i >= all.length) throw new ValueError(`CharVocab.decode: id ${i} out of range [0, ${all.length})`);
      if (i < this.specials.length && !keepSpecials) continue;
      s += all[i];
    }
    return s;
  }

  toJSON(): VocabJSON {
    return { kind: 'char', specials: [...this.specials], symbols: [...this.symbols] };
  }

  static fromJSON(j: VocabJSON): CharVocab {
    if (j.kind !== 'char' || !Array.isArray(j.symbols))
      throw new ValueError(`CharVocab.fromJSON: expected kind "char" with symbols`);
    return new CharVocab(j.symbols, j.specials);
  }
}

/** UTF-8 byte vocabulary: ids 0–255 are bytes, specials follow from 256 (e.g. `<pad>` = 256). */
export class ByteVocab {
  readonly specials: readonly string[];
  private static readonly enc = new TextEncoder();

  constructor(specials: readonly string[] = []) {
    this.specials = [...specials];
  }

  get size(): number {
    return 256 + this.specials.length;
  }

  special(name: string): number {
    const i = this.specials.indexOf(name);
    if (i < 0)
      throw new ValueError(`ByteVocab: no special ${JSON.stringify(name)}; have [${this.specials.join(', ')}]`);
    return 256 + i;
  }

  encode(text: string): Int32Array {
    return Int32Array.from(ByteVocab.enc.encode(text));
  }

  /** Drops specials; invalid UTF-8 decodes to U+FFFD (a byte model can emit any byte). */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let k = 0; k < ids.length; k++) {
      const i = ids[k]!;
      if (i < 0 || i >= this.size) throw new ValueError(`ByteVocab.decode: id ${i} out of range [0, ${this.size})`);
      if (i < 256) bytes.push(i);
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
  }

  toJSON(): VocabJSON {
    return { kind: 'byte', specials: [...this.specials] };
  }
}

/** Decodes bytes to text, honouring a UTF-8 or UTF-16 (LE/BE) byte-order mark; no BOM means UTF-8. */
export function decodeText(bytes: Uint8Array): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe)
    return new TextDecoder('utf-16le').decode(bytes.subarray(2));
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff)
    return new TextDecoder('utf-16be').decode(bytes.subarray(2));
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
    return new TextDecoder().decode(bytes.subarray(3));
  return new TextDecoder().decode(bytes);
}
