// Fetching sources at build time: npm tarballs with `npm pack`, Debian packages with `apt-get download`, both cached
// under <data>/cache, each recorded with its version and the SHA-256 of the file fetched.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTar } from './tar.js';
import { requireTool, run } from './tools.js';

export interface Fetched {
  kind: 'npm' | 'deb';
  name: string;
  version: string;
  /** Version asked for, when it differs from the one fetched (the Debian mirror keeps current versions only). */
  pinned?: string;
  file: string;
  bytes: number;
  sha256: string;
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export type Log = (msg: string) => void;

/** `npm pack name@version` into <cache>/npm (once), returning the tarball's record. */
export function fetchNpm(name: string, version: string, cache: string): Fetched {
  const dir = join(cache, 'npm');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name.replace(/^@/, '').replace(/\//g, '-')}-${version}.tgz`);
  if (!existsSync(file)) {
    requireTool('npm', `fetching ${name}@${version}`);
    const r = run('npm', ['pack', `${name}@${version}`, '--pack-destination', dir, '--silent'], { cwd: dir });
    if (r.status !== 0)
      throw new Error(`npm pack ${name}@${version} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    if (!existsSync(file)) throw new Error(`npm pack ${name}@${version} did not write ${file}`);
  }
  const bytes = readFileSync(file);
  return { kind: 'npm', name, version, file, bytes: bytes.length, sha256: sha256(bytes) };
}

/** The files of an npm tarball, keyed without the leading `package/`. */
export function npmFiles(f: Fetched): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [k, v] of readTar(readFileSync(f.file))) out.set(k.replace(/^package\//, ''), v);
  return out;
}

/** `apt-get download name` into <cache>/deb (once); `pin` is the version expected, a drift is recorded, not fatal. */
export function fetchDeb(name: string, cache: string, log: Log, pin?: string): Fetched {
  const dir = join(cache, 'deb');
  mkdirSync(dir, { recursive: true });
  const find = () => readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  let base = find();
  if (!base) {
    requireTool('apt-get', `fetching the Debian package ${name}`);
    requireTool('dpkg-deb', `reading the Debian package ${name}`);
    const r = run('apt-get', ['download', '-q', name], { cwd: dir });
    base = find();
    if (r.status !== 0 || !base) {
      const why = r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('W:'))
        .slice(-2)
        .join(' ');
      throw new Error(
        `apt-get download ${name} failed (${why || `exit ${r.status}`}); run \`apt-get update\` as root and retry`,
      );
    }
  }
  const file = join(dir, base);
  const bytes = readFileSync(file);
  const version = run('dpkg-deb', ['-f', file, 'Version']).stdout.trim();
  const f: Fetched = { kind: 'deb', name, version, file, bytes: bytes.length, sha256: sha256(bytes) };
  if (pin && pin !== version) {
    f.pinned = pin;
    log(`note: ${name} is ${version}, pinned ${pin} (the mirror keeps current versions only)`);
  }
  return f;
}

/** Unpacks a .deb into <cache>/x/<name>_<version> (once) and returns that folder. */
export function extractDeb(f: Fetched, cache: string, only?: string[]): string {
  const dest = join(cache, 'x', `${f.name}_${f.version}`);
  if (existsSync(join(dest, '.complete'))) return dest;
  requireTool('dpkg-deb', `unpacking ${f.name}`);
  const tmp = `${dest}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  if (only) {
    // dpkg-deb --fsys-tarfile | tar -x <paths>: for big packages of which a few files are needed
    const r = run('sh', [
      '-c',
      `dpkg-deb --fsys-tarfile "$0" | tar -x -C "$1" --wildcards ${only.map((p) => `'${p}'`).join(' ')}`,
      f.file,
      tmp,
    ]);
    if (r.status !== 0) throw new Error(`unpacking ${f.file} failed: ${r.stderr.trim()}`);
  } else {
    const r = run('dpkg-deb', ['-x', f.file, tmp]);
    if (r.status !== 0) throw new Error(`dpkg-deb -x ${f.file} failed: ${r.stderr.trim()}`);
  }
  writeFileSync(join(tmp, '.complete'), `${f.sha256}\n`);
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return dest;
}
