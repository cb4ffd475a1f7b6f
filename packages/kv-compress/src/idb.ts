// IndexedDB backend of KVCacheStore for browsers: one object store of { bytes, lastUsed } records. Each put is
// one readwrite transaction, which IndexedDB commits atomically.
import type { StoreBackend } from './store.js';

interface Row {
  bytes: Uint8Array;
  lastUsed: number;
}

const isRow = (r: unknown): r is Row => typeof r === 'object' && r !== null && (r as Row).bytes instanceof Uint8Array;

const done = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

export class IndexedDBBackend implements StoreBackend {
  private db: Promise<IDBDatabase> | null = null;
  constructor(
    readonly name = 'tessera-kv-cache',
    readonly factory: IDBFactory = globalThis.indexedDB,
  ) {
    if (!factory) throw new Error('IndexedDBBackend: no indexedDB in this environment');
  }
  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const req = this.factory.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('entries');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  }
  private async store(mode: IDBTransactionMode): Promise<IDBObjectStore> {
    return (await this.open()).transaction('entries', mode).objectStore('entries');
  }
  async get(key: string, opts: { touch?: boolean } = {}): Promise<Uint8Array | null> {
    const touch = opts.touch !== false;
    const s = await this.store(touch ? 'readwrite' : 'readonly');
    const row = (await done(s.get(key))) as Row | undefined;
    // A record this backend did not write (no bytes) reads as missing; the store then drops it.
    if (!isRow(row)) return null;
    if (touch) s.put({ bytes: row.bytes, lastUsed: Date.now() }, key);
    return row.bytes;
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    const s = await this.store('readwrite');
    await done(s.put({ bytes: Uint8Array.from(bytes), lastUsed: Date.now() } satisfies Row, key));
  }
  async delete(key: string): Promise<void> {
    const s = await this.store('readwrite');
    await done(s.delete(key));
  }
  async list(): Promise<{ key: string; size: number; lastUsed: number }[]> {
    const s = await this.store('readonly');
    const [keys, rows] = await Promise.all([done(s.getAllKeys()), done(s.getAll())]);
    return (rows as unknown[]).map((r, i) => ({
      key: String(keys[i]),
      size: isRow(r) ? r.bytes.length : 0,
      lastUsed: isRow(r) && Number.isFinite(r.lastUsed) ? r.lastUsed : 0,
    }));
  }
  close(): void {
    void this.db?.then((d) => d.close());
    this.db = null;
  }
}
