// Praat TextGrid, text formats "long" (key = value) and "short" (values only), read and written.
// Format: Praat manual, "TextGrid file formats" (https://www.fon.hum.uva.nl/praat/manual/TextGrid_file_formats.html).
// Both formats carry the same values in the same order, so one tokenizer that keeps quoted strings, numbers and
// <exists>/<absent> flags, and skips keys and [n] indices, reads both. Declared sizes are never used to allocate:
// items are pushed as they are read, so a lying size ends in a FormatError at the line where the input ran out.
import { FormatError, show, ValueError } from './errors.js';

export interface Interval {
  start: number;
  end: number;
  label: string;
}

export interface Point {
  time: number;
  label: string;
}

export type Tier =
  | { kind: 'interval'; name: string; xmin: number; xmax: number; intervals: Interval[] }
  | { kind: 'point'; name: string; xmin: number; xmax: number; points: Point[] };

export interface TextGrid {
  xmin: number;
  xmax: number;
  tiers: Tier[];
}

type Token = { t: 'str' | 'num' | 'flag'; v: string; line: number };

const EPS = 1e-6;

function tokenizer(text: string, source: string): { next(what: string): Token; peek(): Token | undefined } {
  let i = 0;
  let line = 1;
  let buffered: Token | undefined;
  let afterEquals = false; // in the long format a value must follow "="
  const n = text.length;
  const read = (): Token | undefined => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 10) {
        line++;
        i++;
      } else if (c === 32 || c === 9 || c === 13 || c === 0xfeff) {
        i++;
      } else if (c === 33 /* ! comment */) {
        while (i < n && text.charCodeAt(i) !== 10) i++;
      } else if (c === 34 /* " */) {
        const startLine = line;
        let s = '';
        i++;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q < 0) throw new FormatError(source, startLine, 'unterminated string');
          const chunk = text.slice(i, q);
          for (let k = 0; k < chunk.length; k++) if (chunk.charCodeAt(k) === 10) line++;
          s += chunk;
          if (text.charCodeAt(q + 1) === 34) {
            s += '"';
            i = q + 2;
          } else {
            i = q + 1;
            break;
          }
        }
        afterEquals = false;
        return { t: 'str', v: s, line: startLine };
      } else if (c === 60 /* < */) {
        const close = text.indexOf('>', i);
        const word = close < 0 ? text.slice(i, i + 10) : text.slice(i + 1, close);
        if (word !== 'exists' && word !== 'absent')
          throw new FormatError(source, line, `expected <exists> or <absent>; got ${show(word)}`);
        i = close + 1;
        afterEquals = false;
        return { t: 'flag', v: word, line };
      } else if (c === 91 /* [ */) {
        const close = text.indexOf(']', i);
        if (close < 0 || close - i > 24) throw new FormatError(source, line, 'unterminated [index]');
        i = close + 1;
      } else {
        let j = i;
        while (j < n) {
          const d = text.charCodeAt(j);
          if (d === 32 || d === 9 || d === 10 || d === 13 || d === 34 || d === 91 || d === 33) break;
          j++;
        }
        const word = text.slice(i, j);
        i = j;
        if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(word)) {
          afterEquals = false;
          return { t: 'num', v: word, line };
        }
        // a key (xmin, intervals:, size, =, tiers?, File, type ...): skipped
        if (afterEquals || !/^[A-Za-z?:=]+[A-Za-z?:=0-9]*$/.test(word))
          throw new FormatError(source, line, `unexpected ${show(word)}`);
        afterEquals = word === '=';
      }
    }
    return undefined;
  };
  return {
    peek() {
      buffered ??= read();
      return buffered;
    },
    next(what) {
      const tok = buffered ?? read();
      buffered = undefined;
      if (!tok) throw new FormatError(source, line, `unexpected end of file; expected ${what}`);
      return tok;
    },
  };
}

export interface ParseOptions {
  /** File name used in error messages; default `<input>`. */
  source?: string;
}

/** Parses a TextGrid in the long or short text format (decode UTF-16 files first, e.g. with `decodeText`). */
export function parseTextGrid(text: string, opts: ParseOptions = {}): TextGrid {
  const source = opts.source ?? '<input>';
  if (text.startsWith('ooBinaryFile'))
    throw new FormatError(source, 1, 'binary TextGrid files are not supported; save as text');
  const tk = tokenizer(text, source);
  const str = (what: string): Token => {
    const t = tk.next(what);
    if (t.t !== 'str') throw new FormatError(source, t.line, `expected a string (${what}); got ${show(t.v)}`);
    return t;
  };
  const num = (what: string): number => {
    const t = tk.next(what);
    const v = Number(t.v);
    if (t.t !== 'num' || !Number.isFinite(v))
      throw new FormatError(source, t.line, `expected a number (${what}); got ${show(t.v)}`);
    return v;
  };
  const count = (what: string): number => {
    const t = tk.next(what);
    const v = Number(t.v);
    if (t.t !== 'num' || !Number.isSafeInteger(v) || v < 0)
      throw new FormatError(source, t.line, `expected a count (${what}); got ${show(t.v)}`);
    return v;
  };
  const ft = str('File type');
  if (!ft.v.startsWith('ooTextFile'))
    throw new FormatError(source, ft.line, `expected File type "ooTextFile"; got ${show(ft.v)}`);
  const oc = str('Object class');
  if (!oc.v.startsWith('TextGrid'))
    throw new FormatError(source, oc.line, `expected Object class "TextGrid"; got ${show(oc.v)}`);
  const xmin = num('xmin');
  const xmax = num('xmax');
  const flag = tk.peek();
  let nTiers = 0;
  if (flag?.t === 'flag') {
    tk.next('tiers?');
    if (flag.v === 'exists') nTiers = count('number of tiers');
  } else {
    nTiers = count('number of tiers');
  }
  const tiers: Tier[] = [];
  for (let k = 0; k < nTiers; k++) {
    const cls = str(`class of tier ${k + 1}`);
    if (cls.v !== 'IntervalTier' && cls.v !== 'TextTier') {
      throw new FormatError(source, cls.line, `expected tier class "IntervalTier" or "TextTier"; got ${show(cls.v)}`);
    }
    const name = str(`name of tier ${k + 1}`).v;
    const txmin = num(`xmin of tier ${k + 1}`);
    const txmax = num(`xmax of tier ${k + 1}`);
    const n = count(`size of tier ${k + 1}`);
    if (cls.v === 'IntervalTier') {
      const intervals: Interval[] = [];
      for (let j = 0; j < n; j++) {
        const line = tk.peek()?.line;
        const start = num(`xmin of interval ${j + 1} of tier ${show(name)}`);
        const end = num(`xmax of interval ${j + 1} of tier ${show(name)}`);
        const label = str(`text of interval ${j + 1} of tier ${show(name)}`).v;
        if (end < start - EPS)
          throw new FormatError(
            source,
            line,
            `interval ${j + 1} of tier ${show(name)} ends before it starts (${start} > ${end})`,
          );
        const prev = intervals[intervals.length - 1];
        if (prev && start < prev.end - EPS)
          throw new FormatError(
            source,
            line,
            `interval ${j + 1} of tier ${show(name)} starts at ${start}, before the previous one ends (${prev.end})`,
          );
        if (start < txmin - EPS || end > txmax + EPS)
          throw new FormatError(
            source,
            line,
            `interval ${j + 1} of tier ${show(name)} [${start}, ${end}] lies outside the tier [${txmin}, ${txmax}]`,
          );
        intervals.push({ start, end, label });
      }
      tiers.push({ kind: 'interval', name, xmin: txmin, xmax: txmax, intervals });
    } else {
      const points: Point[] = [];
      for (let j = 0; j < n; j++) {
        const line = tk.peek()?.line;
        const time = num(`time of point ${j + 1} of tier ${show(name)}`);
        const label = str(`mark of point ${j + 1} of tier ${show(name)}`).v;
        const prev = points[points.length - 1];
        if (prev && time < prev.time - EPS)
          throw new FormatError(
            source,
            line,
            `point ${j + 1} of tier ${show(name)} at ${time} comes before the previous one (${prev.time})`,
          );
        points.push({ time, label });
      }
      tiers.push({ kind: 'point', name, xmin: txmin, xmax: txmax, points });
    }
  }
  return { xmin, xmax, tiers };
}

const q = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** Writes a TextGrid as Praat does, in the long (default) or short text format. */
export function formatTextGrid(tg: TextGrid, format: 'long' | 'short' = 'long'): string {
  const out: string[] = ['File type = "ooTextFile"', 'Object class = "TextGrid"', ''];
  if (format === 'short') {
    out.push(String(tg.xmin), String(tg.xmax), tg.tiers.length ? '<exists>' : '<absent>');
    if (tg.tiers.length) out.push(String(tg.tiers.length));
    for (const t of tg.tiers) {
      out.push(t.kind === 'interval' ? '"IntervalTier"' : '"TextTier"', q(t.name), String(t.xmin), String(t.xmax));
      if (t.kind === 'interval') {
        out.push(String(t.intervals.length));
        for (const iv of t.intervals) out.push(String(iv.start), String(iv.end), q(iv.label));
      } else {
        out.push(String(t.points.length));
        for (const p of t.points) out.push(String(p.time), q(p.label));
      }
    }
    return `${out.join('\n')}\n`;
  }
  out.push(`xmin = ${tg.xmin} `, `xmax = ${tg.xmax} `);
  if (!tg.tiers.length) {
    out.push('tiers? <absent> ');
    return `${out.join('\n')}\n`;
  }
  out.push('tiers? <exists> ', `size = ${tg.tiers.length} `, 'item []: ');
  tg.tiers.forEach((t, k) => {
    out.push(`    item [${k + 1}]:`, `        class = ${t.kind === 'interval' ? '"IntervalTier"' : '"TextTier"'} `);
    out.push(`        name = ${q(t.name)} `, `        xmin = ${t.xmin} `, `        xmax = ${t.xmax} `);
    if (t.kind === 'interval') {
      out.push(`        intervals: size = ${t.intervals.length} `);
      t.intervals.forEach((iv, j) => {
        out.push(
          `        intervals [${j + 1}]:`,
          `            xmin = ${iv.start} `,
          `            xmax = ${iv.end} `,
          `            text = ${q(iv.label)} `,
        );
      });
    } else {
      out.push(`        points: size = ${t.points.length} `);
      t.points.forEach((p, j) => {
        out.push(`        points [${j + 1}]:`, `            number = ${p.time} `, `            mark = ${q(p.label)} `);
      });
    }
  });
  return `${out.join('\n')}\n`;
}

/** The interval tier named `name` (or the first interval tier), as intervals. */
export function intervalTier(tg: TextGrid, name?: string): Interval[] {
  const t = tg.tiers.find((t) => t.kind === 'interval' && (name === undefined || t.name === name));
  if (t?.kind !== 'interval') {
    throw new ValueError(
      `no interval tier${name ? ` named ${show(name)}` : ''}; have [${tg.tiers.map((t) => t.name).join(', ')}]`,
    );
  }
  return t.intervals;
}
