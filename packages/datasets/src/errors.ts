// Typed errors. A malformed file names its source and, where it has one, the 1-based line, and says what was
// expected and what came: `FormatError: words.TextGrid:12: expected a number (interval xmax); got "abc"`.

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A malformed file or record. `source` is the file name (or `<input>`), `line` the 1-based line when known. */
export class FormatError extends DatasetError {
  readonly source: string;
  readonly line: number | undefined;
  constructor(source: string, line: number | undefined, detail: string) {
    super(`${source}${line === undefined ? '' : `:${line}`}: ${detail}`);
    this.source = source;
    this.line = line;
  }
}

/** Input larger than a configured bound (bytes, lines, items): reported instead of allocating without limit. */
export class LimitError extends FormatError {}

/** An argument out of its domain (split ratios that do not sum to 1, a batch size of 0, an unknown option). */
export class ValueError extends DatasetError {}

/** Quotes a value for an error message, cut to 40 characters. */
export const show = (v: unknown): string => {
  const s = typeof v === 'string' ? v : String(v);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
};
