import {
  ByteVocab,
  CharVocab,
  cleanText,
  decodeText,
  dropHebrewPoints,
  splitDocuments,
  splitOf,
  ValueError,
} from '@tessera/datasets';
import { describe, expect, test } from 'vitest';

describe('cleanText', () => {
  test('NFC composes, lower-casing is optional, spaces collapse, lines are kept', () => {
    const s = 'Cafe\u0301  Noir\t\u00a0x\r\n\r\n\r\n  Next  ';
    expect(cleanText(s)).toBe('Café Noir x\n\nNext');
    expect(cleanText(s, { lowercase: true })).toBe('café noir x\n\nnext');
    expect(cleanText('Cafe\u0301', { normalize: false })).toBe('Cafe\u0301');
  });

  test('Hebrew points and cantillation go, maqaf and sof pasuq stay', () => {
    // Gen 1:1 opening, pointed: בְּרֵאשִׁ֖ית בָּרָ֣א ... with maqaf (U+05BE) and sof pasuq (U+05C3)
    const pointed =
      '\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05c1\u05b4\u0596\u05d9\u05ea \u05d0\u05b6\u05ea\u05be\u05d4\u05b7\u05e9\u05bc\u05b8\u05de\u05b7\u0591\u05d9\u05b4\u05dd\u05c3';
    const expected = '\u05d1\u05e8\u05d0\u05e9\u05d9\u05ea \u05d0\u05ea\u05be\u05d4\u05e9\u05de\u05d9\u05dd\u05c3';
    expect(dropHebrewPoints(pointed)).toBe(expected);
    expect(cleanText(pointed)).toBe(expected);
    expect(cleanText(pointed, { dropHebrewPoints: false })).toBe(pointed.normalize('NFC'));
    for (const ch of dropHebrewPoints(pointed)) {
      const c = ch.codePointAt(0)!;
      expect(c >= 0x591 && c <= 0x5c7 && c !== 0x5be && c !== 0x5c3).toBe(false);
    }
  });
});

describe('document splits', () => {
  test('90/5/5 by id hash: deterministic, near the ratios, stable when documents are added', () => {
    const ids = Array.from({ length: 20000 }, (_, i) => `doc-${i}`);
    const a = splitDocuments(ids.map((id) => ({ id })));
    expect(a.train.length + a.valid.length + a.test.length).toBe(ids.length);
    expect(a.train.length / ids.length).toBeCloseTo(0.9, 1);
    expect(Math.abs(a.valid.length / ids.length - 0.05)).toBeLessThan(0.006);
    expect(Math.abs(a.test.length / ids.length - 0.05)).toBeLessThan(0.006);
    const more = splitDocuments([...ids, 'extra-1', 'extra-2'].map((id) => ({ id })));
    expect(more.valid.filter((d) => d.id.startsWith('doc-'))).toEqual(a.valid);
    expect(splitOf('doc-17')).toBe(splitOf('doc-17'));
    // a different salt gives a different assignment
    const salted = ids.filter((id) => splitOf(id, [0.9, 0.05, 0.05], 1) !== splitOf(id)).length;
    expect(salted).toBeGreaterThan(1000);
  });

  test('bad ratios are a ValueError', () => {
    expect(() => splitOf('x', [0.5, 0.5, 0.5])).toThrow(ValueError);
    expect(() => splitOf('x', [1.1, -0.05, -0.05])).toThrow(/non-negative/);
  });
});

describe('vocabularies', () => {
  test('CharVocab: specials first, then by frequency; round trip; unknowns to <unk>', () => {
    const v = CharVocab.fromText('abracadabra 😀');
    expect(v.specials).toEqual(['<pad>', '<unk>']);
    expect(v.symbols.slice(0, 3)).toEqual(['a', 'b', 'r']);
    expect(v.size).toBe(2 + 7);
    const ids = v.encode('cab 😀');
    expect(ids.length).toBe(5); // the emoji is one code point
    expect(v.decode(ids)).toBe('cab 😀');
    expect(v.decode(v.encode('zebra'))).toBe('bra');
    expect(Array.from(v.encode('z'))).toEqual([1]);
    expect(CharVocab.fromJSON(v.toJSON()).encode('abc')).toEqual(v.encode('abc'));
    const rare = CharVocab.fromText('aaab', { minCount: 2 });
    expect(rare.symbols).toEqual(['a']);
    expect(() => new CharVocab(['a'], []).encode('b')).toThrow(ValueError);
    expect(() => v.decode([99])).toThrow(/out of range/);
  });

  test('ByteVocab: UTF-8 bytes, specials from 256', () => {
    const v = new ByteVocab(['<pad>', '<eos>']);
    expect(v.size).toBe(258);
    expect(v.special('<eos>')).toBe(257);
    const ids = v.encode('żółw');
    expect(ids.length).toBe(7);
    expect(v.decode([...ids, 256])).toBe('żółw');
    expect(() => v.special('<bos>')).toThrow(ValueError);
  });

  test('decodeText honours BOMs', () => {
    const le = new Uint8Array([0xff, 0xfe, 0x61, 0x00, 0x7c, 0x01]);
    expect(decodeText(le)).toBe('aż');
    const be = new Uint8Array([0xfe, 0xff, 0x00, 0x61]);
    expect(decodeText(be)).toBe('a');
    expect(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x62]))).toBe('b');
  });
});
