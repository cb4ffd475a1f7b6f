import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** Writes only when the content differs, so a re-run leaves files (and their times) untouched. */
export function writeIfChanged(path: string, data: string | Uint8Array): boolean {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (existsSync(path)) {
    const old = readFileSync(path);
    if (old.length === bytes.length && Buffer.compare(old, bytes) === 0) return false;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return true;
}

export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(2)} MB`;
