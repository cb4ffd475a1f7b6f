// @tessera/kv-compress/node: Node-only parts (the filesystem store backend).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreBackend } from './store.js';

const EXT = '.kvc';

/**
 * One file per entry in `dir`. Writes go to a unique temporary file that is renamed over the target, so a
 * crash leaves either the old or the new entry; reads bump the file's mtime, which seeds the LRU on reopen.
 */
const TEMP_MAX_AGE_MS = 60 * 60 * 1000;

/** Whether a `.KEY.PID.RAND.tmp` file is left over: its writer's process is not running, or it is over an hour old. */
async function staleTemp(path: string): Promise<boolean> {
  const s = await stat(path).catch(() => null);
  if (!s) return false;
  if (Date.now() - s.mtimeMs > TEMP_MAX_AGE_MS) return true;
  const pid = Number(path.split('.').at(-3));
  if (!Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: it exists, owned by someone else
  }
}

export class FileBackend implements StoreBackend {
  constructor(readonly dir: string) {}
  private path(key: string): string {
    if (!/^[0-9a-f]{16}$/.test(key)) throw new Error(`FileBackend: key must be 16 hex digits; got ${key}`);
    return join(this.dir, key + EXT);
  }
  async get(key: string, opts: { touch?: boolean } = {}): Promise<Uint8Array | null> {
    try {
      const b = await readFile(this.path(key));
      if (opts.touch !== false) {
        const now = new Date();
        await utimes(this.path(key), now, now).catch(() => {});
      }
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${key}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, bytes, { flush: true });
      await rename(tmp, this.path(key));
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }
  async delete(key: string): Promise<void> {
    await unlink(this.path(key)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
  async list(): Promise<{ key: string; size: number; lastUsed: number }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: { key: string; size: number; lastUsed: number }[] = [];
    for (const n of names) {
      if (n.endsWith('.tmp')) {
        // A torn write from a crashed process — but the same name is a write in progress while its writer
        // lives (another store, or another process, on this folder): remove it only once the writer is gone,
        // or after an hour whoever wrote it.
        if (await staleTemp(join(this.dir, n))) await unlink(join(this.dir, n)).catch(() => {});
        continue;
      }
      if (!n.endsWith(EXT)) continue;
      const key = n.slice(0, -EXT.length);
      if (!/^[0-9a-f]{16}$/.test(key)) continue;
      const s = await stat(join(this.dir, n)).catch(() => null);
      if (s) out.push({ key, size: s.size, lastUsed: s.mtimeMs });
    }
    return out;
  }
}
