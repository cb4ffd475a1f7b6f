import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, describe, expect, it } from 'vitest';
import { IndexedDBBackend } from '../src/idb.js';
import { FileBackend } from '../src/node.js';
import { KVCacheStore, MemoryBackend, prefixKey, type StoreBackend, unwrapEntry, wrapEntry } from '../src/store.js';

const payload = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const backends: [string, () => Promise<StoreBackend>][] = [
  ['memory', async () => new MemoryBackend()],
  ['IndexedDB (fake-indexeddb)', async () => new IndexedDBBackend('t', new IDBFactory())],
  [
    'filesystem',
    async () => {
      const d = await mkdtemp(join(tmpdir(), 'kvc-store-'));
      dirs.push(d);
      return new FileBackend(d);
    },
  ],
];

describe('entry envelope', () => {
  it('round-trips and rejects any corruption', () => {
    const e = wrapEntry([1, 2, 3], payload(20, 7));
    expect(unwrapEntry(e)!.payload).toEqual(payload(20, 7));
    for (let i = 0; i < e.length; i++) {
      const b = Uint8Array.from(e);
      b[i]! ^= 0x10;
      expect(unwrapEntry(b)).toBeNull();
    }
    expect(unwrapEntry(e.subarray(0, e.length - 1))).toBeNull();
  });
  it('prefix keys depend on every token', () => {
    expect(prefixKey([1, 2, 3])).not.toBe(prefixKey([1, 2, 4]));
    expect(prefixKey([1, 2, 3], 2)).toBe(prefixKey([1, 2]));
  });
});

for (const [name, make] of backends)
  describe(`KVCacheStore on ${name}`, () => {
    it('reuses the longest stored prefix across conversation turns', async () => {
      const s = await KVCacheStore.open(await make());
      await s.put([5, 6, 7], payload(10, 1));
      await s.put([5, 6, 7, 8, 9], payload(10, 2));
      await s.put([5, 1], payload(10, 3));
      const hit = await s.longestPrefix([5, 6, 7, 8, 9, 10, 11]);
      expect(hit?.length).toBe(5);
      expect(hit?.payload[0]).toBe(2);
      expect((await s.longestPrefix([5, 6, 7, 1]))?.length).toBe(3);
      expect(await s.longestPrefix([6, 6])).toBeNull();
      expect((await s.get([5, 1]))![0]).toBe(3);
      expect(await s.get([5, 6])).toBeNull();
    });
    it('evicts least recently used entries beyond the byte and count limits', async () => {
      const s = await KVCacheStore.open(await make(), { maxBytes: 3 * 200, maxEntries: 10 });
      const size = wrapEntry([1], payload(150, 0)).length;
      await s.put([1], payload(150, 1));
      await s.put([2], payload(150, 2));
      await s.put([3], payload(150, 3));
      await s.get([1]); // 1 is now more recent than 2
      await s.put([4], payload(150, 4));
      expect(s.bytes).toBeLessThanOrEqual(600);
      expect(s.bytes).toBe(3 * size);
      expect(await s.get([2])).toBeNull();
      expect((await s.get([1]))![0]).toBe(1);
      const c = await KVCacheStore.open(await make(), { maxEntries: 2 });
      for (let i = 0; i < 5; i++) await c.put([i], payload(4, i));
      expect(c.size).toBe(2);
      expect((await c.get([4]))![0]).toBe(4);
    });
    it('drops corrupt entries and never returns them', async () => {
      const backend = await make();
      const s = await KVCacheStore.open(backend);
      await s.put([9, 9], payload(30, 9));
      await s.put([9], payload(30, 8));
      const key = prefixKey([9, 9]);
      const bytes = (await backend.get(key))!;
      const bad = Uint8Array.from(bytes);
      bad[bad.length - 10]! ^= 0xff;
      await backend.put(key, bad);
      const hit = await s.longestPrefix([9, 9, 1]);
      expect(hit?.length).toBe(1); // falls back to the shorter, intact prefix
      expect(s.dropped).toBe(1);
      expect(await backend.get(key)).toBeNull();
    });
  });

describe('filesystem backend', () => {
  it('writes atomically, reopens its index and removes torn temporary files', async () => {
    const d = await mkdtemp(join(tmpdir(), 'kvc-fs-'));
    dirs.push(d);
    const s = await KVCacheStore.open(new FileBackend(d));
    await s.put([1, 2], payload(64, 5));
    // a writer that is gone (no such pid: above Linux's pid_max) and one that is alive (this process)
    await writeFile(join(d, `.${prefixKey([3])}.99999999.abc.tmp`), payload(10, 0));
    const live = `.${prefixKey([5])}.${process.pid}.def.tmp`;
    await writeFile(join(d, live), payload(10, 0));
    await writeFile(join(d, `${prefixKey([4])}.kvc`), payload(10, 0)); // garbage entry
    const again = await KVCacheStore.open(new FileBackend(d));
    expect(again.size).toBe(1);
    expect(again.dropped).toBe(1);
    expect((await again.get([1, 2]))![0]).toBe(5);
    expect((await readdir(d)).sort()).toEqual([live, `${prefixKey([1, 2])}.kvc`].sort());
  });
});

/** Runs `backend` with a pause between reading an entry and returning it, as a slow disk or database would. */
class SlowReads implements StoreBackend {
  constructor(readonly inner: StoreBackend) {}
  async get(key: string, opts?: { touch?: boolean }) {
    const b = await this.inner.get(key, opts);
    await new Promise((r) => setTimeout(r, 20));
    return b;
  }
  put(key: string, bytes: Uint8Array) {
    return this.inner.put(key, bytes);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list() {
    return this.inner.list();
  }
}

const pause = () => new Promise((r) => setTimeout(r, 15));

for (const [name, make, twin] of [
  ['memory', async () => new MemoryBackend(), (b: StoreBackend) => b],
  [
    'IndexedDB (fake-indexeddb)',
    async () => new IndexedDBBackend('t2', new IDBFactory()),
    (b: StoreBackend) => new IndexedDBBackend('t2', (b as IndexedDBBackend).factory),
  ],
  [
    'filesystem',
    async () => {
      const d = await mkdtemp(join(tmpdir(), 'kvc-store2-'));
      dirs.push(d);
      return new FileBackend(d);
    },
    (b: StoreBackend) => new FileBackend((b as FileBackend).dir),
  ],
] as const)
  describe(`KVCacheStore on ${name}: concurrency and reopening`, () => {
    it('a read that an eviction overtakes returns what it read, never throws', async () => {
      const s = await KVCacheStore.open(new SlowReads(await make()), { maxEntries: 1 });
      await s.put([1], payload(8, 1));
      const pending = s.get([1]);
      await new Promise((r) => setTimeout(r, 5));
      await s.put([2], payload(8, 2)); // evicts [1] while its read is in flight
      expect((await pending)?.[0]).toBe(1);
      expect(await s.get([1])).toBeNull();
      expect((await s.get([2]))![0]).toBe(2);
      expect(s.dropped).toBe(0); // an evicted entry is gone, not corrupt
    });
    it('reopening keeps the LRU order and applies the limits', async () => {
      const backend = await make();
      const s = await KVCacheStore.open(backend);
      for (const k of [1, 2, 3]) {
        await s.put([k], payload(8, k));
        await pause();
      }
      await s.get([1]); // order of use now 2, 3, 1
      await pause();
      // Opening checks every entry by reading it; that must not count as a use.
      await KVCacheStore.open(twin(backend));
      await pause();
      const small = await KVCacheStore.open(twin(backend), { maxEntries: 2 });
      expect(small.size).toBe(2);
      expect(await small.get([2])).toBeNull(); // the least recently used went
      expect((await small.get([1]))![0]).toBe(1);
      expect((await small.get([3]))![0]).toBe(3);
    });
    it('two stores on one backend keep the limits between them', async () => {
      const backend = await make();
      const a = await KVCacheStore.open(backend, { maxEntries: 2 });
      const b = await KVCacheStore.open(twin(backend), { maxEntries: 2 });
      await a.put([1], payload(8, 1));
      await pause();
      await b.put([2], payload(8, 2));
      await pause();
      await a.put([3], payload(8, 3));
      await pause();
      await b.put([4], payload(8, 4));
      expect((await backend.list()).length).toBe(2);
      expect(await a.get([1])).toBeNull();
      expect(await b.get([2])).toBeNull();
      expect(await a.get([4])).toBeNull(); // not in a's index (b wrote it after a opened)
      expect((await b.get([4]))![0]).toBe(4);
      expect(a.dropped + b.dropped).toBe(0);
    });
  });
