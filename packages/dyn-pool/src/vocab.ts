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

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence, or −1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) if (i + k >= b.length || (b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

export const UNK = '\uFFFD';

export class CharVocab {
  private readonly index: Map<string, number>;

  /** symbols[0] must be the unknown symbol. */
  constructor(readonly symbols: readonly string[]) {
    if (symbols[0] !== UNK) throw new ValueError('CharVocab: symbol 0 must be the unknown symbol U+FFFD');
    this.index = new Map(symbols.map((s, i) => [s, i]));
    if (this.index.size !== symbols.length) throw new ValueError('CharVocab: duplicate symbols');
  }

  /** Every code point that occurs at least minCount times, most frequent first (ties by code point). */
  static fromText(text: string, opts: { minCount?: number; maxSize?: number } = {}): CharVocab {
    const { minCount = 1, maxSize = Number.POSITIVE_INFINITY } = opts;
    if (text.length === 0) throw new TextInputError('CharVocab.fromText: empty text');
    const counts = new Map<string, number>();
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    counts.delete(UNK);
    const syms = [...counts]
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
    const cs = [...text];
    const ids = new Int32Array(cs.length);
    let unknown = 0;
    cs.forEach((c, i) => {
      const id = this.index.get(c);
      if (id === undefined || id === 0) {
        if (opts.onUnknown === 'error')
          throw new TextInputError(
            `character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at position ${i} is not in the vocabulary`,
          );
        unknown++;
      } else ids[i] = id;
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
