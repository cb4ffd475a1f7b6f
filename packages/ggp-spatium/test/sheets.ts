// Locates the shared rule sheets at `../shared/ggp-games` relative to the repository root, from this file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** packages/ggp-spatium/test → repository root is three levels up; the sheets sit beside the repository. */
export const SHEETS = resolve(here, '../../../../shared/ggp-games');
export const haveSheets = existsSync(SHEETS);
export const sheet = (name: string): string => readFileSync(join(SHEETS, `${name}.kif`), 'utf8');
