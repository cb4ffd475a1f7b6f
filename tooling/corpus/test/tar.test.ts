import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { readTar, TarError } from '../src/tar.js';

function tarEntry(name: string, body: string, prefix = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write(`${Buffer.byteLength(body).toString(8).padStart(11, '0')}\0`, 124);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write(prefix, 345);
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512);
  data.write(body);
  return Buffer.concat([h, data]);
}

describe('tar reader', () => {
  test('reads a gzipped ustar archive with prefixes', () => {
    const tar = Buffer.concat([
      tarEntry('package/a.txt', 'hello'),
      tarEntry('b.txt', 'x'.repeat(700), 'package/data'),
      Buffer.alloc(1024),
    ]);
    const files = readTar(gzipSync(tar));
    expect([...files.keys()]).toEqual(['package/a.txt', 'package/data/b.txt']);
    expect(Buffer.from(files.get('package/a.txt')!).toString()).toBe('hello');
    expect(files.get('package/data/b.txt')!.length).toBe(700);
  });

  test('a truncated archive is a TarError', () => {
    const tar = tarEntry('package/a.txt', 'x'.repeat(2000));
    expect(() => readTar(tar.subarray(0, 1024))).toThrow(TarError);
  });
});
