// Reading the CLI's input files: text that must be UTF-8 and not empty, and JSON that names the file when it is
// not JSON. Typed errors (one line from the CLI), never a decoder's replacement characters or a SyntaxError's stack.
import { readFileSync } from 'node:fs';
import { FormatError } from '@tessera/tensor-core';
import { ValueError } from '../errors.js';

/** A UTF-8 text file (the first `maxChars` characters), or a FormatError naming it. */
export function readText(path: string, what = 'text', maxChars = Number.POSITIVE_INFINITY): string {
  const bytes = readFileSync(path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError(`${what} ${path} is not UTF-8`);
  }
  if (text.length === 0) throw new ValueError(`${what} ${path} is empty`);
  return Number.isFinite(maxChars) ? text.slice(0, maxChars) : text;
}

/** A JSON file, or a ValueError naming it. */
export function readJson(path: string, what: string): unknown {
  const s = readFileSync(path, 'utf8');
  try {
    return JSON.parse(s);
  } catch (e) {
    throw new ValueError(`${what} ${path} is not JSON: ${(e as Error).message}`);
  }
}
