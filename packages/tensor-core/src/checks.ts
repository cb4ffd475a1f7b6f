// Option checks for nn and optim: one place, one message shape ("who: name must be …; got v"), so a bad value
// is refused where the layer, model, optimizer or schedule is made rather than turning into NaN later.
import { ValueError } from './errors.js';

const shown = (v: unknown): string => (typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v)));

/** An integer ≥ `min` (counts, sizes, steps). */
export function checkInt(who: string, name: string, v: unknown, min: number): void {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= min))
    throw new ValueError(`${who}: ${name} must be an integer ≥ ${min}; got ${shown(v)}`);
}

/** A finite number ≥ 0 (rates, decays, eps). */
export function checkNonNegative(who: string, name: string, v: unknown): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
    throw new ValueError(`${who}: ${name} must be a finite number ≥ 0; got ${shown(v)}`);
}

/** A finite number > 0 (bases, factors). */
export function checkPositive(who: string, name: string, v: unknown): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
    throw new ValueError(`${who}: ${name} must be a finite number > 0; got ${shown(v)}`);
}

/** A number in [lo, hi] or, with `openHigh`, [lo, hi) (probabilities, momenta). */
export function checkInterval(who: string, name: string, v: unknown, lo: number, hi: number, openHigh = false): void {
  if (!(typeof v === 'number' && v >= lo && (openHigh ? v < hi : v <= hi)))
    throw new ValueError(`${who}: ${name} must be in [${lo}, ${hi}${openHigh ? ')' : ']'}; got ${shown(v)}`);
}

/** One of the allowed choices; a typo would otherwise build the default silently. */
export function checkChoice(who: string, name: string, v: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(v as string))
    throw new ValueError(`${who}: ${name} must be ${allowed.map((a) => `'${a}'`).join(', ')}; got ${shown(v)}`);
}
