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

  it('names the first bad sequence of every ill-formed kind, agreeing with the fatal TextDecoder', () => {
    // Overlong forms, encoded surrogates and code points past U+10FFFF have continuation bytes of the right
    // shape; Unicode's Table 3-7 narrows the second byte after E0, ED, F0 and F4.
    for (const seq of [
      [0xed, 0xa0, 0x80], // U+D800
      [0xed, 0xbf, 0xbf], // U+DFFF
      [0xe0, 0x80, 0x80], // overlong U+0000
      [0xe0, 0x9f, 0xbf], // overlong U+07FF
      [0xf0, 0x80, 0x80, 0x80], // overlong
      [0xf0, 0x8f, 0xbf, 0xbf], // overlong U+FFFF
      [0xf4, 0x90, 0x80, 0x80], // U+110000
      [0xc0, 0x80],
      [0xc1, 0xbf],
      [0xf5, 0x80, 0x80, 0x80],
    ]) {
      expect(firstInvalidUtf8(new Uint8Array(seq)), seq.join(' ')).toBe(0);
      expect(firstInvalidUtf8(new Uint8Array([0x61, 0xc3, 0xa9, ...seq]))).toBe(3);
      expect(() => decodeUtf8(new Uint8Array([0x61, ...seq]), 'x')).toThrow(/first bad byte at offset 1\)/);
    }
    // The edges that are well formed.
    for (const seq of [
      [0xed, 0x9f, 0xbf], // U+D7FF
      [0xee, 0x80, 0x80], // U+E000
      [0xe0, 0xa0, 0x80], // U+0800
      [0xf0, 0x90, 0x80, 0x80], // U+10000
      [0xf4, 0x8f, 0xbf, 0xbf], // U+10FFFF
    ])
      expect(firstInvalidUtf8(new Uint8Array(seq)), seq.join(' ')).toBe(-1);
    // Random near-UTF-8 bytes: valid exactly when the fatal decoder accepts them, and when not, everything
    // before the named offset decodes.
    const pool = [0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef];
    pool.push(0xf0, 0xf1, 0xf4, 0xf5, 0xff);
    const fatal = new TextDecoder('utf-8', { fatal: true });
    const decodes = (b: Uint8Array) => {
      try {
        fatal.decode(b);
        return true;
      } catch {
        return false;
      }
    };
    let x = 12345;
    let invalid = 0;
    for (let t = 0; t < 20000; t++) {
      const b = new Uint8Array(1 + (t % 7));
      for (let i = 0; i < b.length; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        b[i] = pool[(x >>> 8) % pool.length]!;
      }
      const off = firstInvalidUtf8(b);
      expect(off === -1, Array.from(b).join(' ')).toBe(decodes(b));
      if (off >= 0) {
        invalid++;
        expect(decodes(b.subarray(0, off)), Array.from(b).join(' ')).toBe(true);
      }
    }
    expect(invalid).toBeGreaterThan(1000);
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
