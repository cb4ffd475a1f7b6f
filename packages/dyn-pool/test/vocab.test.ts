import { describe, expect, it } from 'vitest';
import { CharVocab, decodeUtf8, firstInvalidUtf8, TextInputError, UNK } from '../src/index.js';

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
});
