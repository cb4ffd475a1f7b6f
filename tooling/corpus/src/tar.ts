// A minimal reader for the (gzipped) ustar archives npm publishes: regular files only, with ustar prefixes, GNU long
// names and pax `path` records. Sizes are checked against the archive, so a damaged file fails instead of looping.
import { gunzipSync } from 'node:zlib';

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

const str = (b: Uint8Array, o: number, n: number): string => {
  let e = o;
  while (e < o + n && b[e] !== 0) e++;
  return new TextDecoder().decode(b.subarray(o, e));
};

function octal(b: Uint8Array, o: number, n: number): number {
  const s = str(b, o, n).trim();
  if (!/^[0-7]*$/.test(s)) throw new TarError(`bad octal field ${JSON.stringify(s)} at byte ${o}`);
  return s ? Number.parseInt(s, 8) : 0;
}

/** Regular files of a tar (or .tgz when `gzip` is true or the bytes start with the gzip magic). */
export function readTar(input: Uint8Array): Map<string, Uint8Array> {
  const b = input[0] === 0x1f && input[1] === 0x8b ? new Uint8Array(gunzipSync(input)) : input;
  const files = new Map<string, Uint8Array>();
  let o = 0;
  let longName: string | undefined;
  while (o + 512 <= b.length) {
    if (b.subarray(o, o + 512).every((x) => x === 0)) break;
    const size = octal(b, o + 124, 12);
    const type = String.fromCharCode(b[o + 156] || 48);
    const body = o + 512;
    if (body + size > b.length) throw new TarError(`entry at byte ${o} (${size} bytes) runs past the archive`);
    let name = str(b, o, 100);
    const prefix = str(b, o + 345, 155);
    if (prefix && str(b, o + 257, 6) === 'ustar') name = `${prefix}/${name}`;
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    const data = b.subarray(body, body + size);
    if (type === 'L') longName = str(data, 0, size);
    else if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(data));
      if (m) longName = m[1];
    } else if (type === '0' || type === '7') files.set(name, data);
    o = body + Math.ceil(size / 512) * 512;
  }
  return files;
}
