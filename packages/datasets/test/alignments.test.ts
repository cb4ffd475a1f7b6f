import {
  FormatError,
  formatFrameAlignments,
  formatIntervals,
  framesToIntervals,
  intervalsToFrames,
  parseAbxItems,
  parseFrameAlignments,
  parseIntervals,
} from '@tessera/datasets';
import { describe, expect, test } from 'vitest';

describe('CPC frame alignments', () => {
  test('parse and write back', () => {
    const text = '84-121123-0000 0 0 5 5 5 12\n84-121123-0001 3 3\n\n';
    const m = parseFrameAlignments(text);
    expect([...m.keys()]).toEqual(['84-121123-0000', '84-121123-0001']);
    expect(Array.from(m.get('84-121123-0000')!)).toEqual([0, 0, 5, 5, 5, 12]);
    expect(parseFrameAlignments(formatFrameAlignments(m))).toEqual(m);
  });

  test('errors name the file and line', () => {
    expect(() => parseFrameAlignments('a 1 2\nb 1 x\n', { source: 'phones.txt' })).toThrow(
      /^phones\.txt:2: label 2 of "b"/,
    );
    expect(() => parseFrameAlignments('a 1 -2\n', { source: 'p' })).toThrow(FormatError);
    expect(() => parseFrameAlignments('a 1\na 2\n', { source: 'p' })).toThrow(/p:2: utterance "a" appears twice/);
    expect(() => parseFrameAlignments('lonely\n', { source: 'p' })).toThrow(/p:1: expected/);
    expect(() => parseFrameAlignments('a 1\nb 2\nc 3\n', { source: 'p', maxLines: 2 })).toThrow(
      /p:3: more than 2 lines/,
    );
  });
});

describe('interval alignments', () => {
  test('one file (3 columns) and many (4 columns), with a time scale', () => {
    const one = parseIntervals('# comment\n0 0.1 sil\n0.1 0.25 h\n', { source: 'u1.phn' });
    expect(one.get('u1.phn')).toEqual([
      { start: 0, end: 0.1, label: 'sil' },
      { start: 0.1, end: 0.25, label: 'h' },
    ]);
    const many = parseIntervals('a 0 1600 h#\na 1600 3200 b\nb 0 800 h#\n', { timeScale: 1 / 16000 });
    expect(many.get('a')![1]).toEqual({ start: 0.1, end: 0.2, label: 'b' });
    expect(many.get('b')!.length).toBe(1);
    expect(parseIntervals(formatIntervals(many))).toEqual(many);
  });

  test('errors name the file and line', () => {
    expect(() => parseIntervals('0 1 a\n1 x b\n', { source: 'al.txt' })).toThrow(/^al\.txt:2: expected numeric/);
    expect(() => parseIntervals('0 1 a\n0.5 2 b\n', { source: 'al.txt' })).toThrow(/al\.txt:2: .*starts before/);
    expect(() => parseIntervals('2 1 a\n', { source: 'al.txt' })).toThrow(/al\.txt:1: interval ends before/);
    expect(() => parseIntervals('f 0 1 a\n1 2 b\n', { source: 'al.txt' })).toThrow(/al\.txt:2: expected 4 fields/);
    expect(() => parseIntervals('0 1\n', { source: 'al.txt' })).toThrow(/al\.txt:1: expected "start end label"/);
  });
});

describe('ABX items', () => {
  test('parse', () => {
    const items = parseAbxItems('#file onset offset #phone prev-phone next-phone speaker\nu1 0.1 0.2 a b c s1\n');
    expect(items).toEqual([{ file: 'u1', onset: 0.1, offset: 0.2, phone: 'a', prev: 'b', next: 'c', speaker: 's1' }]);
    expect(() => parseAbxItems('u1 0 1 a b c s\n', { source: 'x.item' })).toThrow(/x\.item:1: expected the header/);
    expect(() => parseAbxItems('#file\nu1 0.3 0.2 a b c s\n', { source: 'x.item' })).toThrow(
      /x\.item:2: expected onset <= offset/,
    );
    expect(() => parseAbxItems('#file\nu1 0.3 0.2 a\n', { source: 'x.item' })).toThrow(/x\.item:2: expected 7 fields/);
  });
});

describe('frames <-> intervals', () => {
  test('the label at each frame centre (hand-computed)', () => {
    const segs = [
      { start: 0, end: 0.025, label: 'a' },
      { start: 0.025, end: 0.03, label: 'b' }, // shorter than a frame: no centre falls inside
      { start: 0.04, end: 0.06, label: 'c' },
    ];
    // centres at 5, 15, 25, 35, 45, 55 ms
    expect(intervalsToFrames(segs)).toEqual(['a', 'a', 'b', '', 'c', 'c']);
    expect(intervalsToFrames(segs, { gap: 'sil', numFrames: 8 })).toEqual([
      'a',
      'a',
      'b',
      'sil',
      'c',
      'c',
      'sil',
      'sil',
    ]);
    expect(
      framesToIntervals(['a', 'a', 'b', 'b', 'b'], 0.01).map((s) => [s.label, +s.start.toFixed(3), +s.end.toFixed(3)]),
    ).toEqual([
      ['a', 0, 0.02],
      ['b', 0.02, 0.05],
    ]);
    expect(intervalsToFrames(framesToIntervals(['x', 'y', 'y', 'z']))).toEqual(['x', 'y', 'y', 'z']);
  });
});
