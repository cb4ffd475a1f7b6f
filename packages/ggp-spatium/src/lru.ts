/**
 * A Map bounded by entry count that forgets the least recently used entry first. The net and program caches
 * use it so that a long-lived process (a player server, a sweep over every sheet) does not keep every sheet it
 * ever loaded: a 75,000-node net or a generated chess program is megabytes, and a sweep over the 314 base
 * sheets in one process ran out of a 4 GB heap with unbounded caches.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`LruCache capacity must be a positive integer; got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The entry, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    // a Map iterates in insertion order, so re-inserting moves the key to the young end
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }
}
