// flite (Debian `flite` + `libflite1`, CMU Flite 2.2) as a second synthetic source: other voices and another
// prosody model, for domain shift. `-psdur` prints each segment with its end time (ARPAbet, `pau` for pauses), so
// alignments are exact here too. Its 16 kHz voices: slt (female, US), rms (male, US), awb (male, Scottish) for
// training, kal16 (male, US, diphone) held out for test. Rate jitter through `duration_stretch`.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWavInfo } from '@tessera/datasets';
import type { Ctx } from './sources.js';
import { deb } from './sources.js';
import type { Engine, SynthEvent } from './speech.js';
import { run } from './tools.js';

export const FLITE_TRAIN_VOICES = ['slt', 'rms', 'awb'];
export const FLITE_TEST_VOICES = ['kal16'];

/** `pau:0.164 hh:0.255 ...` (segment:end time) → phoneme events at segment starts, in ms. */
export function psdurToEvents(out: string): SynthEvent[] {
  const events: SynthEvent[] = [];
  let start = 0;
  for (const tok of out.trim().split(/\s+/)) {
    const m = /^([^:\s]+):(\d+(?:\.\d+)?)$/.exec(tok);
    if (!m) continue;
    const end = Number(m[2]);
    events.push({
      type: 'phoneme',
      audio_position: start * 1000,
      text_position: 0,
      word_length: 0,
      id: m[1] === 'pau' ? '' : m[1],
    });
    start = end;
  }
  return events;
}

export function loadFlite(ctx: Ctx): Engine {
  const root = deb(ctx, 'flite');
  const libRoot = deb(ctx, 'libflite1');
  const bin = join(root, 'usr/bin/flite');
  // usr/lib/<multiarch triplet>/libflite.so.1, whatever the machine's architecture
  const libBase = join(libRoot, 'usr/lib');
  const libDir = [libBase, ...readdirSync(libBase).map((d) => join(libBase, d))].find((d) =>
    existsSync(join(d, 'libflite.so.1')),
  );
  if (!libDir) throw new Error(`libflite1: no libflite.so.1 under ${libBase}`);
  const env = { ...process.env, LD_LIBRARY_PATH: libDir };
  const tmp = mkdtempSync(join(tmpdir(), 'flite-'));
  const wav = join(tmp, 'out.wav');
  // `flite --version` exits 1 after printing its version: check the output, not the status
  const probe = run(bin, ['--version'], { env });
  const version = /version: (\S+)/.exec(probe.stdout + probe.stderr)?.[1];
  if (!version)
    throw new Error(
      `flite from Debian does not run here: ${(probe.stdout + probe.stderr).trim() || `exit ${probe.status}`}`,
    );
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
  return {
    name: version,
    synth(text, voice, p) {
      const stretch = (175 / p.rate).toFixed(3);
      const r = run(bin, ['-voice', voice, '--setf', `duration_stretch=${stretch}`, '-psdur', '-t', text, '-o', wav], {
        env,
      });
      if (r.status !== 0) throw new Error(`flite failed on ${JSON.stringify(text)}: ${r.stderr.trim()}`);
      const bytes = readFileSync(wav);
      const info = readWavInfo(bytes, wav);
      if (info.bitsPerSample !== 16 || info.channels !== 1)
        throw new Error(`flite wrote ${info.bitsPerSample}-bit, ${info.channels} channels`);
      const samples = new Int16Array(info.frames);
      for (let i = 0; i < info.frames; i++) samples[i] = bytes.readInt16LE(info.dataOffset + 2 * i);
      return { samples, sampleRate: info.sampleRate, events: psdurToEvents(r.stdout) };
    },
  };
}
