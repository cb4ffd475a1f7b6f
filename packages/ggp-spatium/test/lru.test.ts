import { describe, expect, it } from 'vitest';
import { LruCache } from '../src/lru.js';

describe('LruCache', () => {
  it('forgets the least recently used entry first, counting reads as uses', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1); // a is now younger than b
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
    expect(c.size).toBe(2);
  });

  it('overwriting a key refreshes it and does not grow the cache', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    c.set('a', 10);
    c.set('c', 3);
    expect(c.get('a')).toBe(10);
    expect(c.get('b')).toBeUndefined();
    expect(c.size).toBe(2);
    expect(c.delete('a')).toBe(true);
    expect(c.delete('a')).toBe(false);
    expect(c.size).toBe(1);
  });

  it('never holds more than its capacity over many distinct keys', () => {
    const c = new LruCache<number, number>(5);
    for (let i = 0; i < 1000; i++) c.set(i, i * i);
    expect(c.size).toBe(5);
    for (let i = 995; i < 1000; i++) expect(c.get(i)).toBe(i * i);
    expect(c.get(994)).toBeUndefined();
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
    expect(() => new LruCache(1.5)).toThrow(/positive integer/);
  });
});
