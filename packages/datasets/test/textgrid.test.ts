import { readFileSync } from 'node:fs';
import { FormatError, formatTextGrid, intervalTier, parseTextGrid, type TextGrid } from '@tessera/datasets';
import { describe, expect, test } from 'vitest';
import { createRng } from '../src/random.js';

const fixture = (name: string): string => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');

describe('TextGrid', () => {
  test('long format as Praat writes it (fixture)', () => {
    const tg = parseTextGrid(fixture('hello.long.TextGrid'), { source: 'hello.long.TextGrid' });
    expect(tg.xmin).toBe(0);
    expect(tg.xmax).toBe(0.65);
    expect(tg.tiers.map((t) => [t.kind, t.name])).toEqual([
      ['interval', 'words'],
      ['interval', 'phones'],
      ['point', 'events'],
    ]);
    expect(intervalTier(tg, 'phones').map((i) => i.label)).toEqual(['', 'h', 'ə', 'l', 'oʊ', '']);
    expect(intervalTier(tg, 'words')[1]).toEqual({ start: 0.05, end: 0.6, label: 'say "hello"' });
    const ev = tg.tiers[2]!;
    expect(ev.kind === 'point' && ev.points).toEqual([{ time: 0.3, label: 'peak' }]);
  });

  test('short format gives the same grid as the long one', () => {
    const long = parseTextGrid(fixture('hello.long.TextGrid'));
    const short = parseTextGrid(fixture('hello.short.TextGrid'));
    expect(short).toEqual(long);
  });

  test('round trip through both writers; multi-line and quoted labels survive', () => {
    const tg: TextGrid = {
      xmin: 0,
      xmax: 2.5,
      tiers: [
        {
          kind: 'interval',
          name: 'a "b"',
          xmin: 0,
          xmax: 2.5,
          intervals: [
            { start: 0, end: 1.25, label: 'x\ny' },
            { start: 1.25, end: 2.5, label: '' },
          ],
        },
        { kind: 'point', name: 'p', xmin: 0, xmax: 2.5, points: [] },
      ],
    };
    expect(parseTextGrid(formatTextGrid(tg, 'long'))).toEqual(tg);
    expect(parseTextGrid(formatTextGrid(tg, 'short'))).toEqual(tg);
    expect(parseTextGrid(formatTextGrid({ xmin: 0, xmax: 1, tiers: [] }))).toEqual({ xmin: 0, xmax: 1, tiers: [] });
  });

  test('malformed grids name the file and the line', () => {
    const good = fixture('hello.long.TextGrid');
    const bad = good.replace('xmax = 0.25 ', 'xmax = abc ');
    expect(() => parseTextGrid(bad, { source: 'w.TextGrid' })).toThrow(FormatError);
    try {
      parseTextGrid(bad, { source: 'w.TextGrid' });
    } catch (e) {
      const err = e as FormatError;
      expect(err.source).toBe('w.TextGrid');
      expect(err.line).toBe(good.split('\n').findIndex((l) => l.includes('xmax = 0.25')) + 1);
      expect(err.message).toMatch(/^w\.TextGrid:\d+: (unexpected "abc"|expected a number)/);
    }
    // a size that lies: ends with "unexpected end of file" instead of allocating a billion intervals
    const lying = good.replace('intervals: size = 6', 'intervals: size = 1000000000');
    expect(() => parseTextGrid(lying, { source: 'lie.TextGrid' })).toThrow(/lie\.TextGrid:\d+: (expected|unexpected)/);
    expect(() => parseTextGrid(good.replace(/xmin = 0\.05 \n(\s+)xmax = 0\.1 /, 'xmin = 0.2 \n$1xmax = 0.1 '))).toThrow(
      /ends before it starts/,
    );
    expect(() =>
      parseTextGrid('File type = "ooTextFile"\nObject class = "TextGrid"\n0\n1\n<exists>\n1\n"IntervalTier"\n"x\n'),
    ).toThrow(/<input>:8: unterminated string/);
    expect(() => parseTextGrid('File type = "ooTextFile"\nObject class = "Pitch 1"\n')).toThrow(
      /<input>:2: expected Object class/,
    );
    expect(() => parseTextGrid('ooBinaryFile\x08TextGrid')).toThrow(/binary/);
    expect(() =>
      parseTextGrid('File type = "ooTextFile"\nObject class = "TextGrid"\n0\n1\n<exists>\n1\n"Weird"\n'),
    ).toThrow(/:7: expected tier class/);
  });

  test('fuzz: truncations and byte edits never hang and only throw FormatError', () => {
    const good = fixture('hello.short.TextGrid') + fixture('hello.long.TextGrid');
    const rng = createRng(7);
    const junk = ['"', '<', '[', '9e999', '-1', '\n', ' ', 'x', '!', ']', '>'];
    for (let k = 0; k < 2000; k++) {
      let s = good.slice(0, Math.floor(rng() * good.length));
      const edits = Math.floor(rng() * 4);
      for (let e = 0; e < edits; e++) {
        const p = Math.floor(rng() * (s.length + 1));
        s = s.slice(0, p) + junk[Math.floor(rng() * junk.length)] + s.slice(p + 1);
      }
      try {
        parseTextGrid(s);
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
      }
    }
  });
});
