// Character vocabulary and text input checks for the character-level LM. Id 0 is the unknown symbol:
// characters outside the vocabulary map to it and are counted (a defined fallback, never a silent drop).
import { ValueError } from '@tessera/tensor-core';

export class TextInputError extends ValueError {
  override name = 'TextInputError';
}

/** Decodes bytes as UTF-8, refusing invalid sequences (with the byte offset) and empty text. */
export function decodeUtf8(bytes: Uint8Array, what = 'text'): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TextInputError(`${what}: not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)})`);
  }
  if (text.length === 0) throw new TextInputError(`${what}: empty text`);
  return text;
}

/**
 * Offset of the first byte that does not start or continue a well-formed UTF-8 sequence (Unicode's Table 3-7:
 * no overlong forms, no encoded surrogates, nothing above U+10FFFF), or −1. The offset is the sequence's
 * first byte.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  const cont = (x: number | undefined, lo = 0x80, hi = 0xbf) => x !== undefined && x >= lo && x <= hi;
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // below: overlong
      if (c === 0xed) hi = 0x9f; // above: UTF-16 surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90; // below: overlong
      if (c === 0xf4) hi = 0x8f; // above: past U+10FFFF
    } else return i;
    if (n > 0 && !cont(b[i + 1], lo, hi)) return i;
    for (let k = 2; k <= n; k++) if (!cont(b[i + k])) return i;
    i += n + 1;
  }
  return -1;
}

export const UNK = '\uFFFD';

/**
 * Calls f with each code point of `text` in order, as `for (const c of text)` visits them (a lone surrogate is
 * its own code point), without making a string per character.
 */
export function forEachCodePoint(text: string, f: (cp: number) => void): void {
  for (let u = 0; u < text.length; ) {
    const cp = text.codePointAt(u)!;
    f(cp);
    u += cp > 0xffff ? 2 : 1;
  }
}

/** The number of code points of `text` (`[...text].length` without the array). */
export function codePointLength(text: string): number {
  let n = text.length;
  for (let u = 0; u < text.length - 1; u++) {
    const c = text.charCodeAt(u);
    if (c >= 0xd800 && c < 0xdc00) {
      const d = text.charCodeAt(u + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n--;
        u++;
      }
    }
  }
  return n;
}

/** The UTF-16 offset of code point `k` of `text` (text.length when k is its code point length). */
export function codeUnitOffset(text: string, k: number): number {
  let u = 0;
  for (let i = 0; i < k && u < text.length; i++) u += text.codePointAt(u)! > 0xffff ? 2 : 1;
  return u;
}

export class CharVocab {
  private readonly index: Map<string, number>;
  /** The single-code-point symbols by code point (what `encode` looks up; no symbol spans two code points). */
  private readonly byCodePoint: Map<number, number>;

  /** symbols[0] must be the unknown symbol. */
  constructor(readonly symbols: readonly string[]) {
    if (symbols[0] !== UNK) throw new ValueError('CharVocab: symbol 0 must be the unknown symbol U+FFFD');
    this.index = new Map(symbols.map((s, i) => [s, i]));
    if (this.index.size !== symbols.length) throw new ValueError('CharVocab: duplicate symbols');
    this.byCodePoint = new Map();
    symbols.forEach((s, i) => {
      const cp = s.codePointAt(0);
      if (cp !== undefined && s.length === (cp > 0xffff ? 2 : 1)) this.byCodePoint.set(cp, i);
    });
  }

  /** Every code point that occurs at least minCount times, most frequent first (ties by code point). */
  static fromText(text: string, opts: { minCount?: number; maxSize?: number } = {}): CharVocab {
    const { minCount = 1, maxSize = Number.POSITIVE_INFINITY } = opts;
    if (text.length === 0) throw new TextInputError('CharVocab.fromText: empty text');
    // maxSize counts the unknown symbol: 1 is a vocabulary of it alone; below 1 the slice below would keep all
    if (!(maxSize >= 1 && (Number.isInteger(maxSize) || maxSize === Number.POSITIVE_INFINITY)))
      throw new ValueError(`CharVocab.fromText: maxSize must be an integer ≥ 1; got ${maxSize}`);
    if (!Number.isFinite(minCount))
      throw new ValueError(`CharVocab.fromText: minCount must be finite; got ${minCount}`);
    // Counted by code point number, not as one-character strings: a corpus of tens of millions of characters
    // would otherwise make as many short-lived strings.
    const counts = new Map<number, number>();
    forEachCodePoint(text, (cp) => counts.set(cp, (counts.get(cp) ?? 0) + 1));
    counts.delete(UNK.codePointAt(0)!);
    const syms = [...counts]
      .map(([cp, n]) => [String.fromCodePoint(cp), n] as const)
      .filter(([, n]) => n >= minCount)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, maxSize - 1)
      .map(([c]) => c);
    return new CharVocab([UNK, ...syms]);
  }

  get size(): number {
    return this.symbols.length;
  }

  id(c: string): number | undefined {
    return this.index.get(c);
  }

  /** Ids of the whitespace symbols (the whitespace boundary source). */
  spaceIds(): number[] {
    return this.symbols.flatMap((s, i) => (i > 0 && /\s/u.test(s) ? [i] : []));
  }

  /**
   * Code points → ids. Unknown characters become id 0 and are counted; with `onUnknown: 'error'` the first
   * one is an error that names it and its position.
   */
  encode(text: string, opts: { onUnknown?: 'unk' | 'error' } = {}): { ids: Int32Array; unknown: number } {
    const ids = new Int32Array(codePointLength(text));
    let unknown = 0;
    let i = 0;
    forEachCodePoint(text, (cp) => {
      const id = this.byCodePoint.get(cp);
      if (id === undefined || id === 0) {
        if (opts.onUnknown === 'error')
          throw new TextInputError(
            `character ${JSON.stringify(String.fromCodePoint(cp))} (U+${cp.toString(16).toUpperCase().padStart(4, '0')}) at position ${i} is not in the vocabulary`,
          );
        unknown++;
      } else ids[i] = id;
      i++;
    });
    return { ids, unknown };
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const sym = this.symbols[ids[i]!];
      if (sym === undefined) throw new ValueError(`CharVocab.decode: id ${ids[i]} is outside [0, ${this.size})`);
      s += sym;
    }
    return s;
  }
}
