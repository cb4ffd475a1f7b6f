// Locates the shared rule sheets at `../shared/ggp-games` relative to the repository root, from this file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** packages/ggp-spatium/test → repository root is three levels up; the sheets sit beside the repository. */
/** GGP_SHEETS overrides the location (a checkout placed elsewhere). */
export const SHEETS = process.env.GGP_SHEETS ?? resolve(here, '../../../../shared/ggp-games');
export const haveSheets = existsSync(SHEETS);
// The sheet-based tests skip without the sheets; say so once, so a skipped run is never mistaken for a pass.
if (!haveSheets) console.warn(`ggp-spatium: rule sheets not found at ${SHEETS} (set GGP_SHEETS); sheet tests skipped`);
export const sheet = (name: string): string => readFileSync(join(SHEETS, `${name}.kif`), 'utf8');
