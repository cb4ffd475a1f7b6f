// Reads test/fixtures/features.json (made by test/fixtures/generate.py with torchaudio 0.13 / numpy).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Entry {
  shape: number[];
  b64: string;
  [meta: string]: unknown;
}

const raw: Record<string, Entry> = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'features.json'), 'utf8'),
);

export function golden(name: string): { data: Float32Array; shape: number[]; meta: Record<string, unknown> } {
  const e = raw[name];
  if (!e) throw new Error(`no golden ${name}`);
  const buf = Buffer.from(e.b64, 'base64');
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return { data, shape: e.shape, meta: e };
}

/** max |a - b| / (atol + rtol |b|): <= 1 means within tolerance everywhere. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!)));
  return worst;
}

export function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
