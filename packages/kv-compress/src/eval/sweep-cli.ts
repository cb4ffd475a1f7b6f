// `tessera-kv-compress sweep`: the lever grid of sweep.ts from the command line, written as JSON (resumable: rows
// already in --out are kept) and as a markdown table beside it.
//   tessera-kv-compress sweep --model model.safetensors --out sweep.json [--text valid.txt] [--samples 100] [--quick]
//       [--window 32] [--grid grid.json] ratio=64 cal-seed=2027,2028 calibration=uniform,attention ...
// --grid takes one grid ({ "cal-seed": [2027, 2028] }) or a list of them, whose points are joined.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ValueError } from '../errors.js';
import { fnv1a64 } from '../numeric.js';
import { readJson, readText } from './files.js';
import { loadModel } from './model.js';
import { sweepReport } from './report.js';
import { RETRIEVAL_SUITE } from './suite.js';
import { LEVER_NAMES, LEVERS, parseGrid, runSweep, type SweepResult } from './sweep.js';
import { encodeText, TEXT_VOCAB_SIZE } from './tasks.js';

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export const SWEEP_USAGE = `usage: tessera-kv-compress sweep --model M.safetensors --out sweep.json [--text valid.txt] [--samples N]
    [--quick] [--window W] [--grid grid.json] LEVER=v1,v2 ...
levers:
${LEVER_NAMES.map((n) => `  ${n.padEnd(14)} ${LEVERS[n].allowed}`).join('\n')}`;

/** Runs the sweep subcommand on its arguments (after `sweep`). */
export function sweepCli(argv: string[]): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(SWEEP_USAGE);
    return;
  }
  const flags = new Map<string, string | true>();
  const levers: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const name = a.slice(2);
      if (name === 'quick') flags.set(name, true);
      else if (i + 1 < argv.length) flags.set(name, argv[++i]!);
      else throw new ValueError(`sweep: --${name} needs a value\n${SWEEP_USAGE}`);
    } else levers.push(a);
  }
  const known = ['model', 'out', 'text', 'samples', 'quick', 'window', 'grid'];
  for (const k of flags.keys())
    if (!known.includes(k)) throw new ValueError(`sweep: unknown option --${k}\n${SWEEP_USAGE}`);
  const modelPath = flags.get('model');
  const out = flags.get('out');
  if (typeof modelPath !== 'string' || typeof out !== 'string')
    throw new ValueError(`sweep: --model and --out are required\n${SWEEP_USAGE}`);
  if (!out.endsWith('.json')) throw new ValueError(`sweep: --out names a .json file, not ${out}`);
  const gridFile = flags.get('grid');
  // --grid: one grid (an object of lever → values) or a list of grids whose points are joined; levers on the
  // command line are added to every grid of the file
  const fromFile: unknown = typeof gridFile === 'string' ? readJson(gridFile, 'sweep: --grid') : [{}];
  const fileGrids = (Array.isArray(fromFile) ? fromFile : [fromFile]) as Record<string, unknown>[];
  if (!fileGrids.length || fileGrids.some((g) => typeof g !== 'object' || g === null || Array.isArray(g)))
    throw new ValueError(`sweep: --grid holds an object of lever → values, or a non-empty list of them`);
  const extra = parseGrid(levers);
  const grid = fileGrids.map((g) => {
    const parsed = parseGrid(g);
    for (const n of Object.keys(extra))
      if (n in parsed) throw new ValueError(`sweep: lever ${n} is set both in --grid and on the command line`);
    return { ...parsed, ...extra };
  });
  const weights = new Uint8Array(readFileSync(modelPath));
  const model = loadModel(weights);
  const v2 = model.config.vocabSize >= TEXT_VOCAB_SIZE;
  const textPath = flags.get('text');
  const textBytes = typeof textPath === 'string' ? readText(textPath, 'sweep: --text', 1_000_000) : undefined;
  const n = Number(flags.get('samples') ?? (v2 ? '60' : '0'));
  if (!(Number.isInteger(n) && n >= (flags.has('samples') ? 1 : 0)))
    throw new ValueError(`sweep: --samples takes an integer ≥ 1, not ${flags.get('samples')}`);
  const windowFlag = flags.get('window');
  const window = windowFlag === undefined ? undefined : Number(windowFlag);
  if (window !== undefined && !(Number.isInteger(window) && window >= 1))
    throw new ValueError(`sweep: --window takes an integer ≥ 1, not ${windowFlag}`);
  const previous = existsSync(out)
    ? (readJson(out, 'sweep: --out (the rows of an earlier run)') as SweepResult)
    : undefined;
  const mdPath = out.replace(/\.json$/, '.md');
  const save = (r: SweepResult) => {
    writeAtomic(out, JSON.stringify(r));
    writeAtomic(mdPath, `${sweepReport(r)}\n`);
  };
  const r = runSweep(model, {
    ...(v2 ? RETRIEVAL_SUITE : {}),
    ...(window !== undefined ? { window } : {}),
    grid,
    previous,
    save,
    modelId: fnv1a64(weights),
    textId: textBytes !== undefined ? fnv1a64(new TextEncoder().encode(textBytes)) : undefined,
    samples: flags.has('quick') ? { kv: 8, passkey: 5, vt: 5 } : n ? { kv: n, passkey: n, vt: n } : undefined,
    text: textBytes !== undefined ? encodeText(textBytes) : undefined,
    log: (l) => console.log(l),
  });
  save(r);
  console.log(`\n${sweepReport(r)}\n\nwrote ${out} and ${mdPath}`);
}
