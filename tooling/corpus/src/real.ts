// Real speech: Debian asterisk-core-sounds-en-wav (one speaker, 8 kHz, CC-BY-SA-3.0) with the transcripts of
// asterisk-core-sounds-en (`key: text` in core-sounds-en.txt.gz), as a held-out test manifest.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { formatManifest, type ManifestEntry, readWavInfo } from '@tessera/datasets';
import { type Ctx, deb } from './sources.js';
import { writeIfChanged } from './util.js';

/** `key: text` lines; `;` comments and blank lines skipped. */
export function parseTranscripts(src: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of src.split('\n')) {
    const i = l.indexOf(':');
    if (!l.trim() || l.startsWith(';') || i < 0) continue;
    m.set(l.slice(0, i).trim(), l.slice(i + 1).trim());
  }
  return m;
}

const ONES =
  'zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen'.split(
    ' ',
  );
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

function numberWords(n: number): string {
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? ` ${ONES[n % 10]}` : '');
  if (n < 1000) return `${ONES[Math.floor(n / 100)]} hundred${n % 100 ? ` ${numberWords(n % 100)}` : ''}`;
  return String(n)
    .split('')
    .map((d) => ONES[Number(d)])
    .join(' ');
}

/** Lower-case words for scoring: digits spelt out, `#` → pound, `*` → star, other punctuation dropped. */
export function normalizeTranscript(s: string): string {
  return s
    .toLowerCase()
    .replace(/#/g, ' pound ')
    .replace(/\*/g, ' star ')
    .replace(/\d+/g, (d) => ` ${numberWords(Number(d))} `)
    .replace(/[^a-z' ]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function buildReal(ctx: Ctx, out: string): { files: string[]; stats: Record<string, number> } {
  const wavRoot = join(deb(ctx, 'asterisk-core-sounds-en-wav'), 'usr/share/asterisk/sounds/en_US_f_Allison');
  const txt = join(deb(ctx, 'asterisk-core-sounds-en'), 'usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz');
  const trans = parseTranscripts(gunzipSync(readFileSync(txt)).toString('utf8'));
  const dir = join(out, 'speech', 'asterisk-en');
  const files: string[] = [];
  const entries: ManifestEntry[] = [];
  let seconds = 0;
  for (const [key, text] of [...trans].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const src = join(wavRoot, `${key}.wav`);
    const norm = normalizeTranscript(text);
    if (!existsSync(src) || !norm || key.startsWith('silence/')) continue;
    const bytes = readFileSync(src);
    const info = readWavInfo(bytes, src);
    const name = `${key.replace(/\//g, '__')}.wav`;
    writeIfChanged(join(dir, 'wav', name), bytes);
    files.push(join(dir, 'wav', name));
    seconds += info.duration;
    entries.push({
      audio: `wav/${name}`,
      text,
      speaker: 'allison',
      duration: info.duration,
      extra: { id: key, norm, sampleRate: info.sampleRate },
    });
  }
  writeIfChanged(join(dir, 'test.jsonl'), formatManifest(entries));
  files.push(join(dir, 'test.jsonl'));
  ctx.log(`real asterisk-en: ${entries.length} utterances, ${(seconds / 60).toFixed(1)} min`);
  return { files, stats: { utterances: entries.length, minutes: +(seconds / 60).toFixed(2) } };
}
