import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, onTestFinished, test } from 'vitest';
import { osisToText, parseCanonHeader, readModule, SwordError, slotCount } from '../src/sword.js';

// A two-book versification in libsword's header layout (the real ones come from Debian libsword-dev).
const CANON = `
struct sbook otbooks[] = {
  {"Genesis", "Gen", "Gen", 2},
  {"", "", "", 0}
};
struct sbook ntbooks[] = {
  {"Jude", "Jude", "Jude", 1},
  {"", "", "", 0}
};
/* verses per chapter */
int vm[] = {
  // Genesis
  2, 1,
  // Jude
  2
};
`;

/** Writes a zText module: `texts` maps slot index → entry text, one zlib block per testament. */
function writeModule(
  dir: string,
  testament: 'ot' | 'nt',
  slots: number,
  texts: Map<number, string>,
  recSize: 10 | 12,
  link?: [number, number],
) {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const pos = new Map<number, [number, number]>();
  let off = 0;
  for (const [slot, t] of [...texts].sort((a, b) => a[0] - b[0])) {
    const b = enc.encode(t);
    pos.set(slot, [off, b.length]);
    parts.push(b);
    off += b.length;
  }
  if (link) pos.set(link[1], pos.get(link[0])!);
  const raw = Buffer.concat(parts);
  const z = deflateSync(raw);
  const bzs = Buffer.alloc(12);
  bzs.writeUInt32LE(0, 0);
  bzs.writeUInt32LE(z.length, 4);
  bzs.writeUInt32LE(raw.length, 8);
  const bzv = Buffer.alloc(slots * recSize);
  for (const [slot, [o, n]] of pos) {
    bzv.writeUInt32LE(0, slot * recSize);
    bzv.writeUInt32LE(o, slot * recSize + 4);
    if (recSize === 10) bzv.writeUInt16LE(n, slot * recSize + 8);
    else bzv.writeUInt32LE(n, slot * recSize + 8);
  }
  writeFileSync(join(dir, `${testament}.bzs`), bzs);
  writeFileSync(join(dir, `${testament}.bzv`), bzv);
  writeFileSync(join(dir, `${testament}.bzz`), z);
}

describe('SWORD zText reader', () => {
  const v = parseCanonHeader(CANON);

  test('canon header', () => {
    expect(v.ot).toEqual([{ name: 'Genesis', osis: 'Gen', chapters: [2, 1] }]);
    expect(v.nt).toEqual([{ name: 'Jude', osis: 'Jude', chapters: [2] }]);
    // 2 headings + Gen (intro + ch1 heading + 2 + ch2 heading + 1)
    expect(slotCount(v.ot)).toBe(2 + 1 + 3 + 2);
    expect(() => parseCanonHeader(CANON.replace('2, 1,', '2,'))).toThrow(SwordError);
    // a header that reuses KJV's New Testament
    const ot = parseCanonHeader(CANON.replace(/struct sbook ntbooks[\s\S]*?\};/, ''), v);
    expect(ot.nt).toEqual(v.nt);
  });

  for (const recSize of [10, 12] as const) {
    test(`reads verses by slot (${recSize}-byte records), skips headings, drops linked repeats`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'ztext-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      // OT slots: 0 module, 1 testament, 2 Gen intro, 3 Gen 1 heading, 4 Gen 1:1, 5 Gen 1:2, 6 Gen 2 heading, 7 Gen 2:1
      writeModule(
        dir,
        'ot',
        8,
        new Map([
          [3, '<title>Chapter 1</title>'],
          [4, 'In the <w lemma="strong:H7225">begin</w><w>ning</w>.<note>a note</note>'],
          [7, 'Thus the heavens &amp; the earth'],
        ]),
        recSize,
        [7, 5], // Gen 1:2 points at Gen 2:1's text (a commentary-style link)
      );
      writeModule(dir, 'nt', 2 + 1 + 1 + 2, new Map([[5, 'Jude 2']]), recSize);
      const entries = [...readModule(dir, v)];
      expect(entries.map((e) => [e.key, osisToText(e.raw)])).toEqual([
        ['Gen.1.1', 'In the beginning.'],
        ['Gen.1.2', 'Thus the heavens & the earth'],
        ['Jude.1.2', 'Jude 2'],
      ]);
      expect([...readModule(dir, v, { headings: true })].map((e) => e.key)).toContain('Gen.1.0');
      // the wrong versification does not fit the index
      const other = parseCanonHeader(CANON.replace('"Gen", 2}', '"Gen", 1}').replace('2, 1,', '2,'));
      expect(() => [...readModule(dir, other)]).toThrow(/wrong versification/);
    });
  }

  test('osisToText', () => {
    expect(osisToText('<w lemma="x">And</w> <w>God</w> <note type="x">n</note>said<lb/>Let')).toBe('And God said Let');
    expect(osisToText('a &lt;b&gt; &#233; &#x263A;')).toBe('a <b> é ☺');
  });
});
