// A small reader for SWORD zText / zCom modules (the Bible texts and commentaries Debian ships as sword-text-* and
// sword-comm-*), with node:zlib instead of libsword/diatheke (which leaks headings into verses).
// Layout, per testament (`ot`, `nt`), with prefix `b` (block per book) or `c` (per chapter):
//   <p>zs  12-byte block records: u32 offset, u32 compressed size, u32 raw size (into <p>zz)
//   <p>zz  zlib-compressed blocks
//   <p>zv  one record per verse slot: u32 block, u32 offset, u16 size (zText/zCom) or u32 size (zText4/zCom4)
// Verse slots follow the module's versification: [module heading, testament heading], then per book an intro slot,
// per chapter a heading slot, then the verses. Versification tables (books, chapters, verses per chapter) are read
// from libsword's `canon*.h` headers at build time (Debian libsword-dev), so none are copied here.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

export interface Book {
  name: string;
  osis: string;
  chapters: number[]; // verses per chapter
}

export interface Versification {
  ot: Book[];
  nt: Book[];
}

export class SwordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SwordError';
  }
}

/**
 * Parses a libsword canon header (`canon.h` for KJV, `canon_nrsva.h` for NRSVA ...): `struct sbook otbooks[] =
 * {{"Genesis", "Gen", "Gen", 50}, ...}`, `ntbooks`, and `int vm[] = {31, 25, ...}`. A header that reuses KJV's
 * New Testament (a comment `use ntbooks`) gets it from `base`.
 */
export function parseCanonHeader(src: string, base?: Versification): Versification {
  const stripped = src.replace(/\/\*[\s\S]*?\*\//g, '');
  const books = (kind: 'ot' | 'nt'): { name: string; osis: string; n: number }[] | undefined => {
    const m = new RegExp(`struct\\s+sbook\\s+${kind}books\\w*\\[\\]\\s*=\\s*\\{([\\s\\S]*?)\\};`).exec(stripped);
    if (!m) return undefined;
    const out: { name: string; osis: string; n: number }[] = [];
    for (const b of m[1]!.matchAll(/\{\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*"([^"]*)"\s*,\s*(\d+)\s*\}/g)) {
      if (b[1]) out.push({ name: b[1], osis: b[2]!, n: Number(b[4]) });
    }
    return out;
  };
  const vmMatch = /int\s+vm\w*\[\]\s*=\s*\{([\s\S]*?)\};/.exec(stripped);
  if (!vmMatch) throw new SwordError('canon header: no "int vm[]" table');
  const vm = vmMatch[1]!
    .replace(/\/\/.*$/gm, '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const ot = books('ot');
  const nt = books('nt') ?? base?.nt.map((b) => ({ name: b.name, osis: b.osis, n: b.chapters.length }));
  if (!ot || !nt) throw new SwordError('canon header: missing otbooks or ntbooks');
  let k = 0;
  const take = (bs: { name: string; osis: string; n: number }[]): Book[] =>
    bs.map((b) => {
      const chapters = vm.slice(k, k + b.n);
      k += b.n;
      return { name: b.name, osis: b.osis, chapters };
    });
  const v = { ot: take(ot), nt: take(nt) };
  if (k !== vm.length) throw new SwordError(`canon header: ${vm.length} chapter entries for ${k} chapters`);
  if (vm.some((x) => !Number.isInteger(x) || x < 0)) throw new SwordError('canon header: bad verse count');
  return v;
}

export interface Entry {
  /** OSIS key: `Gen.1.1`; chapter headings `Gen.1.0`, book intros `Gen.0.0`. */
  key: string;
  book: string;
  chapter: number;
  verse: number;
  /** Raw entry markup (OSIS/ThML), UTF-8 decoded. */
  raw: string;
}

/** Number of verse slots of one testament. */
export function slotCount(books: Book[]): number {
  return 2 + books.reduce((s, b) => s + 1 + b.chapters.reduce((t, v) => t + 1 + v, 0), 0);
}

/**
 * All non-empty entries of a module folder (holding ot.bzs/.bzv/.bzz and nt.*, or the .cz* files), in canonical
 * order. `headings: false` (default) drops book intros and chapter headings.
 */
export function* readModule(dir: string, v: Versification, opts: { headings?: boolean } = {}): Generator<Entry> {
  for (const t of ['ot', 'nt'] as const) {
    const prefix = ['b', 'c', 'v'].find((p) => existsSync(join(dir, `${t}.${p}zv`)));
    if (!prefix) continue;
    const idx = readFileSync(join(dir, `${t}.${prefix}zv`));
    const blocksIdx = readFileSync(join(dir, `${t}.${prefix}zs`));
    const data = readFileSync(join(dir, `${t}.${prefix}zz`));
    const books = v[t];
    const slots = slotCount(books);
    const recSize = idx.length / slots;
    if (recSize !== 10 && recSize !== 12) {
      throw new SwordError(
        `${dir}/${t}.${prefix}zv: ${idx.length} bytes do not fit ${slots} verse slots of 10 or 12 bytes (wrong versification?)`,
      );
    }
    const cache = new Map<number, Buffer>();
    const block = (b: number): Buffer => {
      let buf = cache.get(b);
      if (!buf) {
        if ((b + 1) * 12 > blocksIdx.length) throw new SwordError(`${dir}/${t}: block ${b} out of range`);
        const off = blocksIdx.readUInt32LE(b * 12);
        const size = blocksIdx.readUInt32LE(b * 12 + 4);
        if (off + size > data.length) throw new SwordError(`${dir}/${t}: block ${b} runs past the data file`);
        buf = inflateSync(data.subarray(off, off + size));
        cache.clear(); // blocks are visited in order: keep one
        cache.set(b, buf);
      }
      return buf;
    };
    const dec = new TextDecoder();
    const seen = new Set<string>(); // commentaries link one entry to many verses: keep its first slot only
    let slot = 2;
    for (const bk of books) {
      for (let c = 0; c <= bk.chapters.length; c++) {
        const nv = c === 0 ? 0 : bk.chapters[c - 1]!;
        for (let vs = 0; vs <= nv; vs++, slot++) {
          if (vs === 0 && !opts.headings) continue;
          const o = slot * recSize;
          const b = idx.readUInt32LE(o);
          const off = idx.readUInt32LE(o + 4);
          const size = recSize === 10 ? idx.readUInt16LE(o + 8) : idx.readUInt32LE(o + 8);
          if (size === 0) continue;
          const id = `${b}:${off}:${size}`;
          if (seen.has(id)) continue;
          seen.add(id);
          const buf = block(b);
          if (off + size > buf.length) throw new SwordError(`${dir}/${t}: ${bk.osis}.${c}.${vs} runs past its block`);
          yield {
            key: `${bk.osis}.${c}.${vs}`,
            book: bk.osis,
            chapter: c,
            verse: vs,
            raw: dec.decode(buf.subarray(off, off + size)),
          };
        }
      }
    }
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * Plain text from OSIS or ThML markup: notes, titles and cross-references dropped, `<w>` and other inline tags
 * unwrapped without adding spaces, line and paragraph elements turned into spaces, entities decoded.
 */
export function osisToText(raw: string): string {
  let s = raw;
  s = s.replace(/<note\b[^>]*\/>/g, '');
  s = s.replace(/<(note|title|rdg|scripRef|reference)\b[^>]*>[\s\S]*?<\/\1>/g, ' ');
  s = s.replace(/<(lb|l|p|div|br|lg|milestone|q)\b[^>]*\/?>/g, ' ');
  s = s.replace(/<[^>]*>/g, '');
  s = s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
  return s.replace(/\s+/g, ' ').trim();
}
