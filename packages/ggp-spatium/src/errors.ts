// Typed errors. Each message says what was expected, what came, and where (line:column for rule sheets).

export class GgpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A position in a KIF text: 1-based line and column, 0-based character offset. */
export interface SourcePos {
  line: number;
  col: number;
  offset: number;
}

export const fmtPos = (p: SourcePos | undefined): string => (p ? `${p.line}:${p.col}` : '?:?');

/** Malformed KIF: unbalanced parentheses, a stray token, a rule with no head. */
export class KifSyntaxError extends GgpError {
  constructor(
    readonly detail: string,
    readonly pos: SourcePos,
  ) {
    super(`KifSyntaxError at ${fmtPos(pos)}: ${detail}`);
  }
}

export type GdlIssueKind =
  | 'arity'
  | 'safety'
  | 'stratification'
  | 'recursion'
  | 'keyword'
  | 'role'
  | 'init'
  | 'dependency'
  | 'unknown-relation'
  | 'mgdl';

/** One finding of the validity checks; `rule` is the offending rule's canonical text. */
export interface GdlIssue {
  kind: GdlIssueKind;
  message: string;
  pos?: SourcePos;
  rule?: string;
}

export const fmtIssue = (i: GdlIssue): string => `${fmtPos(i.pos)} [${i.kind}] ${i.message}`;

/** A syntactically fine sheet that breaks the GDL specification's restrictions. */
export class GdlValidationError extends GgpError {
  constructor(readonly issues: GdlIssue[]) {
    super(
      `GdlValidationError: ${issues.length} problem(s):\n${issues
        .slice(0, 20)
        .map((i) => `  ${fmtIssue(i)}`)
        .join('\n')}`,
    );
  }
}

/** A move that is not legal (or not even a term) for the role in the given state. */
export class IllegalMoveError extends GgpError {}

/** A query the reasoner cannot answer: an unsafe query, or a runaway recursion. */
export class ReasonerError extends GgpError {}

/** The compiler refuses a sheet (the interpreter remains available for it). */
export class CompileError extends GgpError {}

/** A malformed or oversized GGP protocol message. */
export class ProtocolError extends GgpError {}
