import { describe, expect, it } from 'vitest';
import { CharVocab, decodeUtf8, firstInvalidUtf8, prepareCorpus, TextInputError, UNK } from '../src/index.js';
import { codePointLength, codeUnitOffset } from '../src/vocab.js';

describe('text input', () => {
  it('decodes UTF-8 and names the first invalid byte', () => {
    expect(decodeUtf8(new TextEncoder().encode('żółw 🐢'))).toBe('żółw 🐢');
    const bad = new Uint8Array([0x61, 0x62, 0xc3, 0x28, 0x63]);
    expect(firstInvalidUtf8(bad)).toBe(2);
    expect(() => decodeUtf8(bad, 'x.txt')).toThrow(/x.txt: not valid UTF-8 \(first bad byte at offset 2\)/);
    expect(() => decodeUtf8(new Uint8Array([0xff]))).toThrow(TextInputError);
    expect(() => decodeUtf8(new Uint8Array(0))).toThrow(/empty text/);
    expect(firstInvalidUtf8(new TextEncoder().encode('ok ✓'))).toBe(-1);
    expect(firstInvalidUtf8(new Uint8Array([0xe2, 0x9c]))).toBe(0); // truncated sequence
  });

  it('builds a character vocabulary by frequency with the unknown symbol at 0', () => {
    const v = CharVocab.fromText('abracadabra 🐢');
    expect(v.symbols[0]).toBe(UNK);
    expect(v.symbols[1]).toBe('a');
    expect(v.id('🐢')).toBeDefined(); // code points, not UTF-16 units
    expect(v.spaceIds()).toEqual([v.id(' ')]);
    const { ids, unknown } = v.encode('abz🐢');
    expect(unknown).toBe(1);
    expect(ids[2]).toBe(0);
    expect(v.decode(ids)).toBe(`ab${UNK}🐢`);
    expect(() => v.encode('abz', { onUnknown: 'error' })).toThrow(
      /"z" \(U\+007A\) at position 2 is not in the vocabulary/,
    );
    expect(() => v.decode([99])).toThrow(/outside/);
    expect(() => CharVocab.fromText('')).toThrow(/empty/);
    expect(() => new CharVocab(['a'])).toThrow(/unknown symbol/);
  });

  it('counts, encodes and cuts by code point as an array of the characters would', () => {
    // Astral characters, a combining mark, a lone high and a lone low surrogate, a pair split by the cut.
    const text = `ab🐢c\u0301\ud800x\udc00y🐢🐢 ż${'q'.repeat(20)}🐢`;
    const cs = [...text];
    expect(codePointLength(text)).toBe(cs.length);
    for (let k = 0; k <= cs.length; k++) expect(codeUnitOffset(text, k)).toBe(cs.slice(0, k).join('').length);
    const v = CharVocab.fromText(text);
    // The array-based reference: counts by one-character string, most frequent first, ties by string order.
    const counts = new Map<string, number>();
    for (const c of cs) counts.set(c, (counts.get(c) ?? 0) + 1);
    const want = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);
    expect(v.symbols).toEqual([UNK, ...want]);
    expect([...v.encode(text).ids]).toEqual(cs.map((c) => v.id(c)));
    expect(v.decode(v.encode(text).ids)).toBe(text);
    for (const validFraction of [0.1, 0.37, 0.5]) {
      const c = prepareCorpus(text, { validFraction });
      const cut = Math.round(cs.length * (1 - validFraction));
      expect(c.train.length + c.valid.length).toBe(cs.length);
      expect(c.train.length).toBe(cut);
      expect(c.vocab.decode(c.valid)).toBe(
        cs
          .slice(cut)
          .map((ch) => (v.id(ch) && c.vocab.id(ch) ? ch : UNK))
          .join(''),
      );
    }
    expect(() => prepareCorpus('🐢'.repeat(15))).toThrow(/has 15 characters; at least 16/);
  });
});
