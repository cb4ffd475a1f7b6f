import { FormatError, formatManifest, type ManifestEntry, parseManifest } from '@tessera/datasets';
import { describe, expect, test } from 'vitest';
import { createRng } from '../src/random.js';

const entries: ManifestEntry[] = [
  {
    audio: 'wav16k/u0.wav',
    text: 'hello',
    speaker: 'en-us+f3',
    duration: 0.65,
    phones: [
      { start: 0, end: 0.05, label: '' },
      { start: 0.05, end: 0.1, label: 'h' },
    ],
    words: [{ start: 0.05, end: 0.6, label: 'hello' }],
    extra: { pitch: 50 },
  },
  { audio: 'wav16k/u1.wav' },
];

describe('JSON-lines manifest', () => {
  test('round trip; phones on disk are [start, end, label]; objects are accepted too', () => {
    const text = formatManifest(entries);
    expect(text.split('\n')[0]).toContain('"phones":[[0,0.05,""],[0.05,0.1,"h"]]');
    expect(parseManifest(text)).toEqual(entries);
    const obj = parseManifest('{"audio":"a.wav","phones":[{"start":0,"end":1,"label":"x"}]}\n');
    expect(obj[0]!.phones).toEqual([{ start: 0, end: 1, label: 'x' }]);
  });

  test('errors name the file and line', () => {
    const ok = '{"audio":"a.wav"}';
    const cases: [string, RegExp][] = [
      [`${ok}\n{"audio":`, /m\.jsonl:2: invalid JSON/],
      [`${ok}\n\n[1]`, /m\.jsonl:3: expected a JSON object/],
      [`{"text":"x"}`, /m\.jsonl:1: "audio" must be a non-empty string/],
      [`{"audio":"a","phones":[[0,1]]}`, /m\.jsonl:1: "phones"\[0\] must be/],
      [`{"audio":"a","phones":[[0,1,"a"],[0.5,2,"b"]]}`, /m\.jsonl:1: "phones"\[1\] starts at 0.5/],
      [`{"audio":"a","duration":-1}`, /"duration" must be/],
      [`{"audio":"a","speaker":3}`, /"speaker" must be a string/],
    ];
    for (const [text, re] of cases) expect(() => parseManifest(text, { source: 'm.jsonl' })).toThrow(re);
    expect(() => parseManifest(`${ok}\n${'x'.repeat(100)}`, { source: 'm.jsonl', maxLineLength: 50 })).toThrow(
      /m\.jsonl:2: line longer than 50/,
    );
  });

  test('fuzz: damaged lines only throw FormatError', () => {
    const good = formatManifest(entries);
    const rng = createRng(3);
    for (let k = 0; k < 2000; k++) {
      const p = Math.floor(rng() * good.length);
      const s =
        good.slice(0, p) +
        '{}[],":0a-'[Math.floor(rng() * 10)] +
        good.slice(p + 1, Math.floor(rng() * good.length * 2));
      try {
        parseManifest(s);
      } catch (e) {
        expect(e).toBeInstanceOf(FormatError);
      }
    }
  });
});
