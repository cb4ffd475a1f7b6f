// Markup removal for each source format. Each function is pure (text in, text out) so it is tested on small inputs.

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  mdash: '—',
  ndash: '–',
  hellip: '…',
};

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : ' ';
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** Brown corpus: `The/at jury/nn ,/,` → `The jury,`; sentences (tab-indented lines) become lines. */
export function brownToText(src: string): string {
  const out: string[] = [];
  for (const line of src.split('\n')) {
    const toks = line
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((t) => t.replace(/\/[^/]+$/, ''));
    if (!toks.length) continue;
    let s = toks.join(' ');
    s = s.replace(/``\s*/g, '"').replace(/\s*''/g, '"');
    s = s.replace(/\s+([.,;:!?)])/g, '$1').replace(/([(])\s+/g, '$1');
    s = s.replace(/\s+(n't|'s|'re|'ll|'ve|'d|'m)\b/g, '$1');
    out.push(s);
  }
  return out.join('\n');
}

/** A fortune file: entries separated by lines holding only `%`. */
export function splitFortunes(src: string): string[] {
  return src
    .replace(/\r\n?/g, '\n')
    .split(/\n%\n|^%\n/m)
    .map((s) => s.replace(/\n%\s*$/, '').trim())
    .filter(Boolean);
}

/** HTML to text: scripts, styles and the head dropped, block elements to newlines, entities decoded. */
export function htmlToText(src: string): string {
  let s = src.replace(/<!--[\s\S]*?-->/g, '');
  s = s.replace(/<(script|style|head|noscript)\b[\s\S]*?<\/\1>/gi, '');
  s = s.replace(/<\/?(p|div|h[1-6]|li|ul|ol|tr|table|br|td|th|dt|dd|section|article|pre|blockquote)\b[^>]*>/gi, '\n');
  s = s.replace(/<[^>]*>/g, '');
  s = decodeEntities(s);
  return s
    .split('\n')
    .map((l) => l.replace(/[ \t\u00a0]+/g, ' ').trim())
    .filter(Boolean)
    .join('\n');
}

/** roff man page to text: text lines and the arguments of font/heading macros kept, other requests dropped. */
export function roffToText(src: string): string {
  const out: string[] = [];
  const keep = /^\.(SH|SS|B|I|BR|RB|IR|RI|BI|IB|SM|SB)\b\s*(.*)$/;
  for (const raw of src.split('\n')) {
    let line = raw;
    if (line.startsWith('.') || line.startsWith("'")) {
      const m = keep.exec(line);
      if (!m) continue;
      line = m[2]!.replace(/"/g, '');
    }
    line = line
      .replace(/\\".*$/, '')
      .replace(/\\f(\[[^\]]*\]|\(..|.)/g, '')
      .replace(/\\s[-+]?\d/g, '')
      .replace(/\\\(em|\\\(en/g, '—')
      .replace(/\\\(([a-zA-Z]{2})/g, '')
      .replace(/\\\[[^\]]*\]/g, '')
      .replace(/\\[-e]/g, (m) => (m === '\\-' ? '-' : '\\'))
      .replace(/\\[&|^~0 c]/g, (m) => (m === '\\~' || m === '\\0' || m === '\\ ' ? ' ' : ''))
      .replace(/\\\*\(?\w+/g, '')
      .trim();
    if (line) out.push(line);
  }
  return out.join('\n');
}

export interface Verse {
  key: string;
  text: string;
}

/**
 * Open Scriptures Hebrew Bible (OSIS, as in Debian bibledit-data `sources/morphhb/*.xml`): per verse, the words
 * with their morpheme slashes removed, maqaf joining words, sof pasuq kept, notes and section marks dropped.
 */
export function morphhbVerses(xml: string): Verse[] {
  const out: Verse[] = [];
  const verseRe = /<verse\b[^>]*osisID="([^"]+)"[^>]*>([\s\S]*?)<\/verse>/g;
  for (const m of xml.matchAll(verseRe)) {
    const body = m[2]!.replace(/<note\b[\s\S]*?<\/note>/g, '');
    let s = '';
    for (const t of body.matchAll(/<(w|seg)\b([^>]*)>([^<]*)<\/\1>/g)) {
      const [, tag, attrs, text] = t;
      if (tag === 'w') s += (s && !s.endsWith('\u05be') ? ' ' : '') + text!.replace(/\//g, '');
      else if (/x-maqqef/.test(attrs!)) s += '\u05be';
      else if (/x-sof-pasuq/.test(attrs!)) s += '\u05c3';
    }
    if (s) out.push({ key: m[1]!, text: s });
  }
  return out;
}

const EN_STOP = new Set(
  'the of and to a in is you that it for on with as are this be or by from your can an not if select click menu dialog box'.split(
    ' ',
  ),
);

/**
 * Localized help and man pages fall back to English where a string is untranslated: drop lines of 4+ words that
 * are mostly English function words (a cheap language test that keeps code samples and names). For Russian a line
 * of 4+ words needs Cyrillic letters, for Vietnamese letters with diacritics.
 */
export function dropEnglishLines(text: string, lang = ''): string {
  return text
    .split('\n')
    .filter((l) => {
      const w = l.toLowerCase().match(/\p{L}+/gu) ?? [];
      if (w.length < 4) return true;
      if (lang === 'ru' && !/\p{Script=Cyrillic}/u.test(l)) return false;
      if (lang === 'vi' && !/[^a-zA-Z]/.test(l.replace(/[^\p{L}]/gu, ''))) return false;
      const letters = l.replace(/[^\p{L}]/gu, '').length;
      const ascii = l.replace(/[^a-zA-Z]/g, '').length;
      const stop = w.filter((x) => EN_STOP.has(x)).length;
      return !(ascii >= 0.9 * letters && stop / w.length >= 0.2);
    })
    .join('\n');
}

/** English sentences for speech prompts: split on . ! ?, kept when 4–18 words of plain letters and punctuation. */
export function promptSentences(text: string, minWords = 4, maxWords = 18): string[] {
  const out: string[] = [];
  for (const s of text.replace(/\s+/g, ' ').split(/(?<=[.!?])\s+(?=[A-Z"])/)) {
    const t = s.trim();
    if (!/^[A-Z][A-Za-z ,;:'"?!.-]+[.!?]"?$/.test(t)) continue;
    if (/[A-Z]{2,}|--|\.\./.test(t)) continue;
    const n = t.split(' ').length;
    if (n >= minWords && n <= maxWords) out.push(t);
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** A dictd number: base64 digits, most significant first. */
export function dictdNumber(s: string): number {
  let n = 0;
  for (const c of s) {
    const d = B64.indexOf(c);
    if (d < 0) throw new Error(`bad dictd number ${JSON.stringify(s)}`);
    n = n * 64 + d;
  }
  return n;
}

/**
 * Entries of a dictd dictionary (`.index` lines `headword<TAB>offset<TAB>length` in base64 digits, into the
 * uncompressed `.dict`); the `00-database-*` meta entries are skipped. Returns [headword, body].
 */
export function dictdEntries(index: string, dict: Uint8Array): [string, string][] {
  const dec = new TextDecoder();
  const out: [string, string][] = [];
  const seen = new Set<number>();
  for (const line of index.split('\n')) {
    const [word, off, len] = line.split('\t');
    if (
      !word ||
      off === undefined ||
      len === undefined ||
      word.startsWith('00-database') ||
      word.startsWith('00database')
    )
      continue;
    const o = dictdNumber(off);
    const n = dictdNumber(len);
    if (seen.has(o) || o + n > dict.length) continue;
    seen.add(o);
    out.push([word, dec.decode(dict.subarray(o, o + n))]);
  }
  return out;
}
