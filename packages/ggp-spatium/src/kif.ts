// KIF S-expressions as GDL uses them (Love et al., "General Game Playing: Game Description Language
// Specification", Stanford LG-2006-01, 2008): prefix lists, `;` comments, case-insensitive symbols, `?x` variables.
import { KifSyntaxError, type SourcePos } from './errors.js';

export type SExpr = SAtom | SList;
export interface SAtom {
  atom: string;
  pos: SourcePos;
}
export interface SList {
  list: SExpr[];
  pos: SourcePos;
}

export const isAtom = (e: SExpr): e is SAtom => 'atom' in e;

/** Parses a whole KIF text into its top-level expressions. Symbols are lower-cased (GDL is case-insensitive). */
export function parseKif(text: string): SExpr[] {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;
  const pos = (): SourcePos => ({ line, col: i - lineStart + 1, offset: i });
  const stack: SList[] = [];
  const top: SExpr[] = [];
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      i++;
      line++;
      lineStart = i;
    } else if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) {
      i++;
    } else if (c === 59 /* ; */) {
      while (i < n && text.charCodeAt(i) !== 10) i++;
    } else if (c === 40 /* ( */) {
      const l: SList = { list: [], pos: pos() };
      (stack.length ? stack[stack.length - 1]!.list : top).push(l);
      stack.push(l);
      i++;
    } else if (c === 41 /* ) */) {
      if (!stack.length) throw new KifSyntaxError("unexpected ')' with no open '('", pos());
      stack.pop();
      i++;
    } else {
      const p = pos();
      const s = i;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 40 || d === 41 || d === 59 || d === 32 || d === 9 || d === 10 || d === 13 || d === 12 || d === 11)
          break;
        i++;
      }
      const tok = text.slice(s, i);
      if (tok.includes('"') || tok.includes('|')) throw new KifSyntaxError(`unsupported token '${tok}'`, p);
      if (tok === '?') throw new KifSyntaxError("variable '?' has no name", p);
      const a: SAtom = { atom: tok.toLowerCase(), pos: p };
      (stack.length ? stack[stack.length - 1]!.list : top).push(a);
    }
  }
  if (stack.length) {
    const open = stack[stack.length - 1]!;
    throw new KifSyntaxError(`unclosed '(' opened at ${open.pos.line}:${open.pos.col}`, pos());
  }
  return top;
}

/** Canonical text: one space between tokens, no space inside parentheses. */
export function printSExpr(e: SExpr): string {
  return isAtom(e) ? e.atom : `(${e.list.map(printSExpr).join(' ')})`;
}
